package cluster

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Balancer is a round-robin TCP load balancer, the simplest kind there is:
// no sticky sessions, no health checks beyond "the backend accepts a
// connection". Each new connection goes to the next backend that answers.
type Balancer struct {
	ln       net.Listener
	backends []string
	next     atomic.Uint64
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
}

// StartBalancer listens on a random loopback port and forwards to backends
// (host:port).
func StartBalancer(t testing.TB, backends ...string) *Balancer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &Balancer{ln: ln, backends: backends, conns: make(map[net.Conn]struct{})}
	go b.serve()
	t.Cleanup(b.Close)
	return b
}

// URL is the balancer's base URL.
func (b *Balancer) URL() string { return "http://" + b.ln.Addr().String() }

// Close stops accepting and cuts every forwarded connection.
func (b *Balancer) Close() {
	b.ln.Close()
	b.mu.Lock()
	defer b.mu.Unlock()
	for c := range b.conns {
		c.Close()
	}
	clear(b.conns)
}

func (b *Balancer) serve() {
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		go b.forward(c)
	}
}

func (b *Balancer) forward(c net.Conn) {
	var up net.Conn
	start := b.next.Add(1)
	for i := range uint64(len(b.backends)) {
		addr := b.backends[(start+i)%uint64(len(b.backends))]
		var err error
		if up, err = net.DialTimeout("tcp", addr, time.Second); err == nil {
			break
		}
	}
	if up == nil {
		c.Close()
		return
	}
	b.mu.Lock()
	b.conns[c], b.conns[up] = struct{}{}, struct{}{}
	b.mu.Unlock()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		// Either side closing ends the pair: a dead node must look dead to
		// its clients.
		dst.Close()
		src.Close()
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	<-done
	b.mu.Lock()
	delete(b.conns, c)
	delete(b.conns, up)
	b.mu.Unlock()
}
