package connwatch

import (
	"crypto/tls"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/honeydo/realtime/internal/devcert"
)

// wait is how long a test waits for something that should happen: long,
// because the machine is shared and busy.
const wait = 10 * time.Second

// impls are the two ways of watching, held to one contract. On systems
// without epoll both are the goroutine.
var impls = []struct {
	name   string
	new    func() *Watcher
	peeks  bool // the data that fired f stays readable
	polled bool // one goroutine for all connections
}{
	{"default", New, runtime.GOOS == "linux", runtime.GOOS == "linux"},
	{"goroutine", func() *Watcher { return &Watcher{goroutineOnly: true} }, false, false},
}

// newWatcher returns a watcher that the test closes at its end.
func newWatcher(t *testing.T, newW func() *Watcher) *Watcher {
	t.Helper()
	w := newW()
	t.Cleanup(func() {
		if err := w.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return w
}

// tcpPair returns the two ends of a loopback TCP connection, both closed
// at the end of the test.
func tcpPair(t testing.TB, ln net.Listener) (server, client *net.TCPConn) {
	t.Helper()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	if s == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { s.Close(); c.Close() })
	return s.(*net.TCPConn), c.(*net.TCPConn)
}

func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// recorder is a callback that counts its calls and reports each on a
// channel.
type recorder struct {
	calls atomic.Int32
	ch    chan bool
}

func newRecorder() *recorder { return &recorder{ch: make(chan bool, 16)} }

func (r *recorder) f(data bool) {
	r.calls.Add(1)
	r.ch <- data
}

func (r *recorder) await(t *testing.T) bool {
	t.Helper()
	select {
	case data := <-r.ch:
		return data
	case <-time.After(wait):
		t.Fatal("f was not called")
		return false
	}
}

func mustWatch(t testing.TB, w *Watcher, c net.Conn, f func(bool)) func() {
	t.Helper()
	stop, err := w.Watch(c, f)
	if err != nil {
		t.Fatalf("Watch: %v", err)
	}
	return stop
}

// readAll reads exactly n bytes from c, within the wait.
func readN(t *testing.T, c net.Conn, n int) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(wait))
	defer c.SetReadDeadline(time.Time{})
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(b)
}

func TestPeerEvents(t *testing.T) {
	for _, impl := range impls {
		for _, tc := range []struct {
			name string
			peer func(*net.TCPConn) error
			data bool
		}{
			{"close", func(c *net.TCPConn) error { return c.Close() }, false},
			{"half close", func(c *net.TCPConn) error { return c.CloseWrite() }, false},
			{"reset", func(c *net.TCPConn) error { c.SetLinger(0); return c.Close() }, false},
			{"data", func(c *net.TCPConn) error { _, err := c.Write([]byte("hello")); return err }, true},
		} {
			t.Run(impl.name+"/"+tc.name, func(t *testing.T) {
				w := newWatcher(t, impl.new)
				server, client := tcpPair(t, listen(t))
				rec := newRecorder()
				stop := mustWatch(t, w, server, rec.f)
				if err := tc.peer(client); err != nil {
					t.Fatal(err)
				}
				if got := rec.await(t); got != tc.data {
					t.Errorf("f(%v), want f(%v)", got, tc.data)
				}
				stop()
				stop() // idempotent, and f has returned: no deadlock
				if n := rec.calls.Load(); n != 1 {
					t.Errorf("f called %d times, want once", n)
				}
				if tc.data {
					want := "hello"
					if !impl.peeks {
						want = "ello" // the goroutine's Read took the first byte
					}
					if got := readN(t, server, len(want)); got != want {
						t.Errorf("server read %q after the watch, want %q", got, want)
					}
				}
			})
		}
	}
}

// TestManyConnections closes the clients of many watched connections in
// random order: each callback runs once, for its own connection.
func TestManyConnections(t *testing.T) {
	const n = 200
	for _, impl := range impls {
		t.Run(impl.name, func(t *testing.T) {
			w := newWatcher(t, impl.new)
			ln := listen(t)
			clients := make([]*net.TCPConn, n)
			stops := make([]func(), n)
			calls := make([]atomic.Int32, n)
			fired := make(chan int, n)
			before := runtime.NumGoroutine()
			for i := range n {
				var server *net.TCPConn
				server, clients[i] = tcpPair(t, ln)
				stops[i] = mustWatch(t, w, server, func(data bool) {
					if data {
						t.Errorf("connection %d: f(true) for a close", i)
					}
					calls[i].Add(1)
					fired <- i
				})
			}
			// The point of the package: no goroutine per connection.
			// (The accept goroutines of tcpPair may still be ending.)
			if grown := runtime.NumGoroutine() - before; impl.polled && grown > n/2 {
				t.Errorf("%d more goroutines for %d watched connections", grown, n)
			}
			for _, i := range rand.Perm(n) {
				clients[i].Close()
			}
			deadline := time.After(wait)
			for range n {
				select {
				case <-fired:
				case <-deadline:
					t.Fatal("not every callback ran")
				}
			}
			for i := range n {
				stops[i]()
				if c := calls[i].Load(); c != 1 {
					t.Errorf("connection %d: f called %d times", i, c)
				}
			}
		})
	}
}

// TestStop: after stop, f is never called, and the connection works both
// ways as if it had never been watched.
func TestStop(t *testing.T) {
	for _, impl := range impls {
		t.Run(impl.name, func(t *testing.T) {
			w := newWatcher(t, impl.new)
			ln := listen(t)
			server, client := tcpPair(t, ln)
			stopped := newRecorder()
			stop := mustWatch(t, w, server, stopped.f)
			stop()

			// Both ways, including data sent after stop.
			if _, err := client.Write([]byte("ping")); err != nil {
				t.Fatal(err)
			}
			if got := readN(t, server, 4); got != "ping" {
				t.Errorf("server read %q", got)
			}
			if _, err := server.Write([]byte("pong")); err != nil {
				t.Fatal(err)
			}
			if got := readN(t, client, 4); got != "pong" {
				t.Errorf("client read %q", got)
			}

			// The stopped connection's peer leaves first, then another
			// watched one's: once the second is reported, the watcher is
			// past the first.
			server2, client2 := tcpPair(t, ln)
			witness := newRecorder()
			stop2 := mustWatch(t, w, server2, witness.f)
			defer stop2()
			client.Close()
			client2.Close()
			witness.await(t)
			if n := stopped.calls.Load(); n != 0 {
				t.Errorf("f called %d times after stop", n)
			}
		})
	}
}

// TestStopWaitsForF: stop called while f runs returns after f does.
func TestStopWaitsForF(t *testing.T) {
	for _, impl := range impls {
		t.Run(impl.name, func(t *testing.T) {
			w := newWatcher(t, impl.new)
			server, client := tcpPair(t, listen(t))
			entered, release := make(chan struct{}), make(chan struct{})
			var stopReturned atomic.Bool
			stop := mustWatch(t, w, server, func(bool) {
				close(entered)
				<-release
				runtime.Gosched() // give an early stop the chance to be seen
				if stopReturned.Load() {
					t.Error("stop returned while f was running")
				}
			})
			client.Close()
			select {
			case <-entered:
			case <-time.After(wait):
				t.Fatal("f was not called")
			}
			stopped := make(chan struct{})
			go func() {
				stop()
				stopReturned.Store(true)
				close(stopped)
			}()
			close(release)
			select {
			case <-stopped:
			case <-time.After(wait):
				t.Fatal("stop did not return after f")
			}
		})
	}
}

// TestWatchAgain: a stopped connection can be watched again.
func TestWatchAgain(t *testing.T) {
	for _, impl := range impls {
		t.Run(impl.name, func(t *testing.T) {
			w := newWatcher(t, impl.new)
			server, client := tcpPair(t, listen(t))
			first := newRecorder()
			mustWatch(t, w, server, first.f)()
			second := newRecorder()
			stop := mustWatch(t, w, server, second.f)
			defer stop()
			client.Close()
			if second.await(t) {
				t.Error("f(true) for a close")
			}
			if n := first.calls.Load(); n != 0 {
				t.Errorf("stopped f called %d times", n)
			}
		})
	}
}

// TestDescriptorReuse: a connection watched, stopped and closed, then
// another one probably given the same descriptor number: only the second
// one's callback runs.
func TestDescriptorReuse(t *testing.T) {
	for _, impl := range impls {
		t.Run(impl.name, func(t *testing.T) {
			w := newWatcher(t, impl.new)
			ln := listen(t)
			serverA, clientA := tcpPair(t, ln)
			a := newRecorder()
			mustWatch(t, w, serverA, a.f)()
			fdA := fdOf(t, serverA)
			serverA.Close()
			clientA.Close()

			serverB, clientB := tcpPair(t, ln)
			if fdB := fdOf(t, serverB); fdB != fdA {
				t.Logf("descriptor not reused (%d, then %d): the test proves less", fdA, fdB)
			}
			b := newRecorder()
			stop := mustWatch(t, w, serverB, b.f)
			defer stop()
			clientB.Close()
			if b.await(t) {
				t.Error("f(true) for a close")
			}
			if n := a.calls.Load(); n != 0 {
				t.Errorf("the first connection's f called %d times", n)
			}
		})
	}
}

func fdOf(t *testing.T, c *net.TCPConn) (fd uintptr) {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Control(func(d uintptr) { fd = d }); err != nil {
		t.Fatal(err)
	}
	return fd
}

// TestClose: Close ends the watcher's goroutines, drops the registrations
// still open and refuses new ones.
func TestClose(t *testing.T) {
	for _, impl := range impls {
		t.Run(impl.name, func(t *testing.T) {
			ln := listen(t)
			server, client := tcpPair(t, ln)
			before := runtime.NumGoroutine()
			w := impl.new()
			rec := newRecorder()
			stop := mustWatch(t, w, server, rec.f)
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil { // idempotent
				t.Fatal(err)
			}
			client.Close()
			if _, err := w.Watch(server, rec.f); !errors.Is(err, ErrClosed) {
				t.Errorf("Watch after Close: %v, want ErrClosed", err)
			}
			// The fallback's goroutine ends with stop (it may also have
			// seen the close by now); the poller's ended with Close.
			stop()
			stop()
			waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
			if n := rec.calls.Load(); n != 0 {
				t.Errorf("f called %d times after Close", n)
			}
		})
	}
}

// TestCloseUnused: a watcher that never watched has nothing to release.
func TestCloseUnused(t *testing.T) {
	if err := New().Close(); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestPipe: a connection without a descriptor falls back to a goroutine
// under the same contract.
func TestPipe(t *testing.T) {
	w := newWatcher(t, New)
	for _, tc := range []struct {
		name string
		peer func(net.Conn) error
		data bool
	}{
		{"close", func(c net.Conn) error { return c.Close() }, false},
		{"data", func(c net.Conn) error { _, err := c.Write([]byte("x")); return err }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			server, client := net.Pipe()
			defer server.Close()
			defer client.Close()
			if rawConn(server) != nil {
				t.Fatal("net.Pipe has a descriptor?")
			}
			rec := newRecorder()
			stop := mustWatch(t, w, server, rec.f)
			defer stop()
			if err := tc.peer(client); err != nil {
				t.Fatal(err)
			}
			if got := rec.await(t); got != tc.data {
				t.Errorf("f(%v), want f(%v)", got, tc.data)
			}
		})
	}
	t.Run("stop", func(t *testing.T) {
		server, client := net.Pipe()
		defer server.Close()
		defer client.Close()
		rec := newRecorder()
		mustWatch(t, w, server, rec.f)()
		go client.Write([]byte("after"))
		if got := readN(t, server, 5); got != "after" {
			t.Errorf("read %q after stop", got)
		}
		if n := rec.calls.Load(); n != 0 {
			t.Errorf("f called %d times after stop", n)
		}
	})
}

// TestTLS: a *tls.Conn is watched through its TCP connection, without a
// goroutine of its own on Linux. A client's clean TLS close sends a
// close_notify alert first, which is data.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	files, err := devcert.Write(dir, []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(files.Cert, files.Key)
	if err != nil {
		t.Fatal(err)
	}
	w := newWatcher(t, New)
	rawServer, rawClient := tcpPair(t, listen(t))
	server := tls.Server(rawServer, &tls.Config{Certificates: []tls.Certificate{cert}})
	client := tls.Client(rawClient, &tls.Config{InsecureSkipVerify: true})
	handshake := make(chan error, 1)
	go func() { handshake <- server.Handshake() }()
	if err := client.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-handshake; err != nil {
		t.Fatal(err)
	}
	if got, want := rawConn(server) != nil, true; got != want {
		t.Errorf("tls.Conn polled: %v, want %v", got, want)
	}
	rec := newRecorder()
	stop := mustWatch(t, w, server, rec.f)
	defer stop()
	client.Close()
	got := rec.await(t)
	if runtime.GOOS == "linux" && !got {
		t.Error("f(false), want f(true) for the close_notify alert")
	}
	// The watch took nothing: the server still reads the alert as EOF.
	server.SetReadDeadline(time.Now().Add(wait))
	if _, err := server.Read(make([]byte, 1)); runtime.GOOS == "linux" && err != io.EOF {
		t.Errorf("server read after the watch: %v, want EOF", err)
	}
}

// BenchmarkWatchIdle reports the memory each watched idle connection
// costs the watcher (heap and goroutine stacks), per implementation.
func BenchmarkWatchIdle(b *testing.B) {
	const n = 1000
	for _, impl := range impls {
		b.Run(impl.name, func(b *testing.B) {
			ln := listen(b)
			servers := make([]*net.TCPConn, n)
			for i := range servers {
				servers[i], _ = tcpPair(b, ln)
			}
			stops := make([]func(), n)
			var perConn float64
			for b.Loop() {
				// A new watcher each time, so its map and goroutine count.
				before := memInUse()
				w := impl.new()
				for i, s := range servers {
					stops[i] = mustWatch(b, w, s, func(bool) {})
				}
				perConn = float64(memInUse()-before) / n
				for _, stop := range stops {
					stop()
				}
				clear(stops)
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(perConn, "B/conn")
		})
	}
}

func memInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc + m.StackInuse)
}
