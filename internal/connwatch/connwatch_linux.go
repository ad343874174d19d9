package connwatch

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// poller is the watcher's own epoll instance and the one goroutine that
// waits on it for all the watcher's connections. Its fields are guarded by
// Watcher.mu.
//
// The descriptors are also in Go's netpoller, edge-triggered in another
// epoll instance; a descriptor may be in several, each with its own
// interest, so this one does not disturb Go's reads and writes.
type poller struct {
	started bool
	epfd    int // valid from start until the goroutine has exited
	wakefd  int // an eventfd that wakes the goroutine for Close
	nextID  uint64
	// regs maps the id in each armed epoll registration to it. Events
	// carry the id rather than the descriptor, so that an event for a
	// registration already stopped can never be taken for a later one on a
	// reused descriptor number.
	regs   map[uint64]*registration
	exited chan struct{} // closed when the goroutine returns
}

// wakeID is the epoll data of the eventfd; registrations count from 1.
const wakeID = 0

// eventBatch is how many events one epoll_wait returns at most.
const eventBatch = 128

// registration is one connection in the epoll instance.
type registration struct {
	w  *Watcher
	id uint64
	rc syscall.RawConn // its descriptor is only used inside rc.Control
	f  func(data bool)
	// mu is held while f runs, so that stop, which takes it, returns only
	// after f has.
	mu      sync.Mutex
	done    bool // f was called or the watch stopped: f is not called (again)
	stopped bool
}

// watchPolled registers rc in the epoll instance, starting it if needed.
// It reports ok false, with no error, if rc has no descriptor to register.
func (w *Watcher) watchPolled(rc syscall.RawConn, f func(data bool)) (stop func(), ok bool, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil, true, ErrClosed
	}
	if !w.started {
		if err := w.start(); err != nil {
			return nil, true, err
		}
	}
	w.nextID++
	r := &registration{w: w, id: w.nextID, rc: rc, f: f}
	// In the map before the kernel can report it; the goroutine's lookup
	// waits for mu.
	w.regs[r.id] = r
	var ctlErr error
	cerr := rc.Control(func(fd uintptr) {
		ev := epollEvent(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLONESHOT, r.id)
		ctlErr = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev)
	})
	if cerr != nil || ctlErr != nil {
		delete(w.regs, r.id)
		if cerr != nil { // closed, or no descriptor: let the fallback try
			return nil, false, nil
		}
		return nil, true, os.NewSyscallError("epoll_ctl", ctlErr)
	}
	return r.stop, true, nil
}

// start creates the epoll instance and its goroutine; w.mu is held.
func (w *Watcher) start() error {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return os.NewSyscallError("epoll_create1", err)
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return os.NewSyscallError("eventfd", err)
	}
	ev := epollEvent(unix.EPOLLIN, wakeID)
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &ev); err != nil {
		unix.Close(wakefd)
		unix.Close(epfd)
		return os.NewSyscallError("epoll_ctl", err)
	}
	w.started = true
	w.epfd, w.wakefd = epfd, wakefd
	w.regs = make(map[uint64]*registration)
	w.exited = make(chan struct{})
	go w.run(epfd, w.exited)
	return nil
}

// run waits for events until Close wakes it. It spends its life in
// epoll_wait, a blocking system call, so it holds an OS thread of its own
// (the runtime hands its P to other goroutines): one thread for all the
// watched connections.
func (w *Watcher) run(epfd int, exited chan struct{}) {
	defer close(exited)
	var events [eventBatch]unix.EpollEvent
	for {
		n, err := unix.EpollWait(epfd, events[:], -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			// Only a bad descriptor or buffer can fail it, which is a bug
			// here; without this goroutine no watch would ever report.
			panic(fmt.Sprintf("connwatch: epoll_wait: %v", err))
		}
		for i := range n {
			id := eventID(&events[i])
			if id == wakeID {
				return
			}
			w.mu.Lock()
			closed, r := w.closed, w.regs[id]
			w.mu.Unlock()
			if closed {
				return
			}
			if r != nil {
				r.fire(epfd)
			}
		}
	}
}

// fire peeks at the socket of a registration the kernel reported ready
// and calls f unless the watch was stopped meanwhile.
func (r *registration) fire(epfd int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return
	}
	var (
		n       int
		peekErr error
		b       [1]byte
		again   bool
	)
	if cerr := r.rc.Control(func(fd uintptr) {
		n, peekErr = peek(int(fd), &b)
		if peekErr == unix.EAGAIN || peekErr == unix.EINTR {
			// Ready but nothing to read after all: wait again. If the
			// registration cannot be re-armed, report the error rather
			// than never report.
			ev := epollEvent(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLONESHOT, r.id)
			peekErr = unix.EpollCtl(epfd, unix.EPOLL_CTL_MOD, int(fd), &ev)
			again = peekErr == nil
		}
	}); cerr != nil {
		// The caller closed c without stopping the watch first; the
		// kernel has dropped the registration with the descriptor.
		peekErr = cerr
	}
	if again {
		return
	}
	r.done = true
	r.w.mu.Lock()
	delete(r.w.regs, r.id) // one shot: the kernel will not report it again
	r.w.mu.Unlock()
	r.f(peekErr == nil && n > 0)
}

// peek looks at the next byte of a socket without taking it: n is 1 for
// data, 0 at end of file, and the error is the socket's (ECONNRESET after
// a reset), which the peek clears, so a later Read sees end of file
// instead. It calls recvfrom directly rather than through unix.Recvfrom,
// which would allocate a source address per call.
func peek(fd int, b *[1]byte) (int, error) {
	n, _, errno := unix.Syscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), 1,
		unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0)
	if errno != 0 {
		return -1, errno
	}
	return int(n), nil
}

// stop deregisters the connection; see Watcher.Watch.
func (r *registration) stop() {
	r.mu.Lock() // waits for a running f
	defer r.mu.Unlock()
	if r.stopped {
		return
	}
	r.stopped, r.done = true, true
	w := r.w
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.regs, r.id)
	if w.closed { // the epoll instance is gone, or going, with all its registrations
		return
	}
	// Through Control, so the descriptor is still the connection's own:
	// if the caller has closed it, the kernel dropped the registration
	// and the number may already belong to another connection. A fired
	// one-shot registration stays in the interest list until deleted, so
	// it is deleted too, which lets c be watched again.
	_ = r.rc.Control(func(fd uintptr) {
		err := unix.EpollCtl(w.epfd, unix.EPOLL_CTL_DEL, int(fd), nil)
		if err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EBADF) {
			panic(fmt.Sprintf("connwatch: epoll_ctl(EPOLL_CTL_DEL): %v", err))
		}
	})
}

// closePoller wakes the goroutine, waits for it to return and releases
// the descriptors; w.closed is set, so nothing else uses them any more.
func (w *Watcher) closePoller() error {
	w.mu.Lock()
	started := w.started
	w.regs = nil
	w.mu.Unlock()
	if !started {
		return nil
	}
	one := [8]byte{1} // eventfd counters are 8-byte integers in host order; any non-zero value wakes
	if _, err := unix.Write(w.wakefd, one[:]); err != nil && err != unix.EAGAIN {
		return os.NewSyscallError("write eventfd", err)
	}
	<-w.exited
	return errors.Join(
		os.NewSyscallError("close", unix.Close(w.epfd)),
		os.NewSyscallError("close", unix.Close(w.wakefd)))
}

// epollEvent returns an event of interest whose data is id. The data
// union sits at Fd and Pad on every architecture (arm64 pads before it);
// the kernel hands the 8 bytes back as it got them.
func epollEvent(events uint32, id uint64) unix.EpollEvent {
	return unix.EpollEvent{Events: events, Fd: int32(uint32(id)), Pad: int32(uint32(id >> 32))}
}

// eventID returns the id epollEvent stored in ev.
func eventID(ev *unix.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}
