package connwatch

import (
	"net"
	"sync"
	"time"
)

// goroutineWatch watches one connection with a goroutine blocked in a
// 1-byte Read: the method for connections without a file descriptor and
// for systems without epoll.
type goroutineWatch struct {
	w *Watcher
	c net.Conn
	f func(data bool)
	// mu is held while f runs, so that stop, which takes it to set
	// stopped, returns only after f has.
	mu       sync.Mutex
	stopped  bool
	exited   chan struct{} // closed when the goroutine returns
	stopOnce sync.Once
}

func (w *Watcher) watchGoroutine(c net.Conn, f func(data bool)) (stop func(), err error) {
	w.mu.Lock()
	closed := w.closed
	w.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	g := &goroutineWatch{w: w, c: c, f: f, exited: make(chan struct{})}
	go g.run()
	return g.stop, nil
}

// run waits for a byte or an error and reports it unless the watch was
// stopped or the watcher closed meanwhile. stop ends it.
func (g *goroutineWatch) run() {
	defer close(g.exited)
	var b [1]byte
	n, _ := g.c.Read(b[:])
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped {
		return
	}
	g.stopped = true // once
	g.w.mu.Lock()
	closed := g.w.closed
	if !closed {
		g.w.callbacks.Add(1)
	}
	g.w.mu.Unlock()
	if closed {
		return
	}
	defer g.w.callbacks.Done()
	g.f(n > 0)
}

// aLongTimeAgo is a read deadline that has passed, to unblock a Read
// without closing the connection.
var aLongTimeAgo = time.Unix(1, 0)

func (g *goroutineWatch) stop() {
	g.stopOnce.Do(func() {
		g.mu.Lock() // waits for a running f
		g.stopped = true
		g.mu.Unlock()
		select {
		case <-g.exited:
			return
		default:
		}
		// A connection that cannot take a deadline (or is already closed)
		// cannot be unblocked: its goroutine ends when the connection
		// does, and, stopped, calls nothing.
		if g.c.SetReadDeadline(aLongTimeAgo) != nil {
			return
		}
		<-g.exited
		_ = g.c.SetReadDeadline(time.Time{})
	})
}
