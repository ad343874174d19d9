// Package connwatch tells when the peer of an idle connection closes it or
// sends something, without a goroutine per connection where it can.
//
// The server holds many hijacked HTTP/1.1 connections on which it only
// writes; it must still notice the client leaving (end of file, reset) or
// sending another request. Blocking a goroutine in a 1-byte Read per
// connection costs a goroutine and its stack for each one, about a third of
// an idle stream's memory. On Linux a [Watcher] instead registers each
// connection in an epoll instance of its own, served by one goroutine for
// all of them; elsewhere, and for connections that expose no file
// descriptor, it falls back to a goroutine per connection.
//
// Concurrency: all methods of [Watcher] and the stop functions returned by
// [Watcher.Watch] are safe for concurrent use. The callbacks run on the
// watcher's goroutines: on Linux one goroutine calls every callback of the
// watcher in turn, so a callback must be short and must not block (close a
// channel, set a flag); it must not call the stop function of its own
// registration nor [Watcher.Close], which wait for the callback to return.
package connwatch

import (
	"errors"
	"net"
	"sync"
	"syscall"
)

// ErrClosed is returned by [Watcher.Watch] after [Watcher.Close].
var ErrClosed = errors.New("connwatch: watcher is closed")

// Watcher watches idle connections for their peer closing them or sending
// data. Create it with [New]; the zero value is not usable. Close it with
// [Watcher.Close] when done to release its goroutine and file descriptors.
type Watcher struct {
	mu     sync.Mutex
	closed bool
	// goroutineOnly makes Watch use the per-connection goroutine for every
	// connection, so tests can hold that path to the same contract on
	// Linux.
	goroutineOnly bool
	// callbacks counts callbacks of goroutine watches in progress, so that
	// Close can wait for them; Add is called under mu while !closed.
	callbacks sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
	poller    // the platform's shared poller, guarded by mu
}

// New returns a watcher. It is cheap: the epoll instance and its goroutine
// are created by the first [Watcher.Watch] that needs them, so a process
// that never watches a connection pays nothing.
func New() *Watcher {
	return &Watcher{}
}

// Watch calls f once, from a goroutine of the watcher's, when c has
// something to read: data (data is true), or end of file, a reset or
// another error (data is false). f is called at most once per Watch.
//
// On Linux, when c or the connection under it (found through a NetConn
// method, as on *tls.Conn) implements [syscall.Conn], Watch reads nothing
// from c: it only peeks at the socket, so the data stays readable. For a
// *tls.Conn that means the TCP connection is watched: a TLS close_notify
// alert is data, so a client that closes TLS cleanly is reported with data
// true; and bytes that the TLS layer has already read into its own buffer
// are not seen. Other connections, and every connection on other systems,
// are watched by a goroutine blocked in a 1-byte c.Read, which consumes
// that byte; callers that treat any byte as the end of the idle period lose
// nothing they would use.
//
// The returned stop deregisters c. After stop returns, f is not running and
// will never be called, and the watcher no longer touches c, so the caller
// may read from c, write to it, watch it again or close it. Call stop
// exactly when the watch is no longer wanted, whether or not f was called:
// it releases the registration. stop is idempotent and may be called from
// any goroutine except from within f itself, which would deadlock. The
// goroutine fallback unblocks its Read by setting a read deadline in the
// past and clears c's read deadline afterwards; a byte that arrives just
// then may be taken by that Read without f being called. A connection
// that refuses read deadlines keeps the fallback's Read until c is closed
// (f is still never called after stop).
//
// The caller must not close c before stop returns, and watches a
// connection once at a time. Watch returns [ErrClosed] after
// [Watcher.Close]. When epoll refuses a connection (the system's limit on
// watches, memory), a goroutine watches it instead.
func (w *Watcher) Watch(c net.Conn, f func(data bool)) (stop func(), err error) {
	if c == nil || f == nil {
		return nil, errors.New("connwatch: Watch needs a connection and a callback")
	}
	if !w.goroutineOnly {
		if rc := rawConn(c); rc != nil {
			stop, ok, err := w.watchPolled(rc, f)
			switch {
			case ok && err == nil:
				return stop, nil
			case errors.Is(err, ErrClosed):
				return nil, err
			}
			// No descriptor, or epoll refused it (its watch limit,
			// memory): a goroutine still watches.
		}
	}
	return w.watchGoroutine(c, f)
}

// Close stops the watcher's goroutine and releases its epoll instance.
// Registrations still open are dropped: their callbacks are never called
// after Close returns (a callback running when Close is called finishes
// first), because a watcher is closed when its owner shuts down, not when
// the peers leave. Their stop functions still work and must still be
// called; for the goroutine fallback, stop is what ends the goroutine.
// Close is idempotent; it returns the error of releasing the file
// descriptors, if any.
func (w *Watcher) Close() error {
	w.closeOnce.Do(func() {
		w.mu.Lock()
		w.closed = true
		w.mu.Unlock()
		w.closeErr = w.closePoller()
		w.callbacks.Wait()
	})
	return w.closeErr
}

// rawConn returns the raw connection under c, unwrapping connections such
// as *tls.Conn that expose the one they run on, or nil if there is none.
func rawConn(c net.Conn) syscall.RawConn {
	for range 8 { // wrappers of wrappers, but never a cycle
		if sc, ok := c.(syscall.Conn); ok {
			rc, err := sc.SyscallConn()
			if err != nil {
				return nil
			}
			return rc
		}
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return nil
		}
		c = u.NetConn()
		if c == nil {
			return nil
		}
	}
	return nil
}
