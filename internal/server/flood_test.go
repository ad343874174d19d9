package server_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"

	"github.com/honeydo/realtime/internal/server"
	"github.com/honeydo/realtime/internal/testkit"
	"github.com/honeydo/realtime/internal/testkit/poll"
)

// floodAttack is one way to hold a server's resources without a credential.
type floodAttack struct {
	name string
	// start launches the attack against addr and returns a function that
	// reports whether the server has closed every attacking connection,
	// and one that ends the attack.
	start func(t *testing.T, addr string) (closedAll func() error, stop func())
}

var floodAttacks = []floodAttack{
	{"http1 slow bodies", startSlowBodies},
	{"h2c stream flood", startStreamFlood},
}

// slowBodyConns is how many HTTP/1.1 connections send a body byte by byte.
const slowBodyConns = 1000

// startSlowBodies opens slowBodyConns HTTP/1.1 connections without an
// Authorization header; each sends its headers and then its body one byte
// every 200 ms.
func startSlowBodies(t *testing.T, addr string) (func() error, func()) {
	t.Helper()
	conns := make([]*slowBodyConn, 0, slowBodyConns)
	for i := range slowBodyConns {
		c, err := dialSlowBody(addr, nil, slowBodyRequests[i%len(slowBodyRequests)], "")
		if err != nil {
			closeAll(conns)
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	stopDrip := make(chan struct{})
	dripped := dripAll(conns, 200*time.Millisecond, stopDrip)
	var once sync.Once
	stop := func() {
		once.Do(func() {
			close(stopDrip)
			<-dripped
			closeAll(conns)
		})
	}
	t.Cleanup(stop)
	closedAll := func() error {
		if n := countOpen(conns); n > 0 {
			return fmt.Errorf("%d of %d slow-body connections %w", n, len(conns), errStillOpen)
		}
		// Every refused caller got its protocol's Unauthenticated.
		want := map[string]string{
			"application/proto":          "401 application/json",
			"application/connect+proto":  "200 application/connect+proto",
			"application/grpc-web+proto": "200 application/grpc-web+proto grpc-status=16",
		}
		answered := 0
		for i, c := range conns {
			req := slowBodyRequests[i%len(slowBodyRequests)]
			got := c.status.Load().(string)
			if got == "" {
				continue // over the connection budget: closed at accept
			}
			answered++
			if got != want[req.contentType] {
				t.Errorf("%s: response %q, want %q", req.name, got, want[req.contentType])
				break
			}
		}
		t.Logf("%d slow-body connections answered Unauthenticated, %d closed at accept (over budget)", answered, len(conns)-answered)
		return nil
	}
	return closedAll, stop
}

// Streams per connection and connections of the HTTP/2 flood.
const (
	floodConns   = 8
	floodStreams = 1000
)

// startStreamFlood opens floodConns cleartext HTTP/2 connections and on
// each sends the headers of floodStreams unary gRPC calls without a
// credential and without their bodies. It returns once every stream's
// headers are sent or the server has closed the connection.
func startStreamFlood(t *testing.T, addr string) (func() error, func()) {
	t.Helper()
	conns := make([]*rawH2, floodConns)
	for i := range conns {
		c, err := dialRawH2(addr)
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c
	}
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() {
			select {
			case <-c.settings:
			case <-time.After(10 * time.Second):
				return
			}
			req := attackRequest{"grpc unary", "/honeydo.realtime.v1.RealtimeService/Ping", "application/grpc"}
			for i := range floodStreams {
				if c.openStream(uint32(2*i+1), addr, req, "") != nil {
					return // the server closed the connection
				}
			}
		})
	}
	wg.Wait()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			for _, c := range conns {
				c.conn.Close()
			}
			for _, c := range conns {
				<-c.closed
			}
		})
	}
	t.Cleanup(stop)
	closedAll := func() error {
		open, ended := 0, int64(0)
		for _, c := range conns {
			if !c.isClosed() {
				open++
			}
			ended += c.ended.Load()
		}
		if open > 0 {
			return fmt.Errorf("%d of %d HTTP/2 connections %w (%d streams ended)", open, len(conns), errStillOpen, ended)
		}
		for _, c := range conns {
			if got := c.maxStreams.Load(); got == 0 || got > 100 {
				t.Errorf("server allows %d concurrent streams per connection, want 1..100", got)
			}
		}
		t.Logf("HTTP/2 flood: the server ended %d streams before closing the connections", ended)
		return nil
	}
	return closedAll, stop
}

// fromRemote makes the server treat loopback as it treats remote
// addresses: not exempt from the connection budget.
func fromRemote(limits server.ConnLimits) testkit.Option {
	return func(c *server.Config) {
		c.ConnLimits = limits
		c.ConnLimits.Exempt = []netip.Prefix{}
	}
}

// floodBudgets are the connection budgets the flood tests run with: off,
// so that the gate alone is measured, and the default.
var floodBudgets = []struct {
	name   string
	limits server.ConnLimits
}{
	{"no budget", server.ConnLimits{PerAddr: -1, UnauthenticatedPerAddr: -1}},
	{"default budget", server.ConnLimits{}},
}

// TestUnauthenticatedFlood reproduces two ways of holding the server's
// resources without any credential, and checks that the server lets go of
// every attacking connection within 10 s while resources stay bounded:
// with the connection budget off, so that the gate alone is measured, and
// with the default budget.
func TestUnauthenticatedFlood(t *testing.T) {
	for _, a := range floodAttacks {
		for _, b := range floodBudgets {
			t.Run(a.name+"/"+b.name, func(t *testing.T) {
				srv := newTestServer(t, fromRemote(b.limits))
				res := sampleResources()
				start := time.Now()
				closedAll, stop := a.start(t, srv.Addr)
				err := closedAll()
				for deadline := time.Now().Add(10 * time.Second); err != nil && time.Now().Before(deadline); err = closedAll() {
					time.Sleep(20 * time.Millisecond)
				}
				took := time.Since(start)
				res.Stop()
				stop()
				rssAfter := rss()
				if err != nil {
					t.Fatalf("after %v: %v; %v", took.Round(time.Millisecond), err, res)
				}
				t.Logf("every attacking connection closed %v after the attack began; %v", took.Round(time.Millisecond), res)
				// The HTTP/2 flood may hold at most the stream limit per
				// connection, and in fact holds far less: each stream is
				// refused from its headers.
				if a.name == "h2c stream flood" {
					if limit := floodConns*(server.DefaultMaxConcurrentStreams+8) + 200; res.peakGoroutines-res.baseGoroutines > limit {
						t.Errorf("goroutines grew by %d, bound %d", res.peakGoroutines-res.baseGoroutines, limit)
					}
					if grown := int64(res.peakHeap) - int64(res.baseHeap); grown > 48<<20 {
						t.Errorf("heap in use grew by %.1f MiB, bound 48 MiB", float64(grown)/(1<<20))
					}
					// RSS includes the attacker's side, in this process; the
					// flood held +92 MiB before the gate.
					if grown := res.peakRSS - res.baseRSS; grown > 64<<20 {
						t.Errorf("RSS grew by %.1f MiB at peak, bound 64 MiB", float64(grown)/(1<<20))
					}
					t.Logf("RSS %.1f MiB before the flood, %.1f MiB at peak, %.1f MiB after it (bound +64 MiB at peak)",
						float64(res.baseRSS)/(1<<20), float64(res.peakRSS)/(1<<20), float64(rssAfter)/(1<<20))
				}
			})
		}
	}
}

// TestShutdownDuringUnauthenticatedFlood checks that SIGTERM's shutdown
// does not wait for attackers: it returns within a second (it takes
// milliseconds), with and without the connection budget.
func TestShutdownDuringUnauthenticatedFlood(t *testing.T) {
	const bound = time.Second
	for _, a := range floodAttacks {
		for _, b := range floodBudgets {
			t.Run(a.name+"/"+b.name, func(t *testing.T) {
				srv := newTestServer(t, fromRemote(b.limits))
				_, stop := a.start(t, srv.Addr)
				defer stop()
				// The timeout is far above the bound, so that a slow
				// shutdown is measured rather than cut short.
				ctx, cancel := context.WithTimeout(context.Background(), 10*bound)
				defer cancel()
				start := time.Now()
				err := srv.Shutdown(ctx)
				took := time.Since(start)
				t.Logf("%s, %s: shutdown during the attack took %v", a.name, b.name, took.Round(time.Millisecond))
				if err != nil {
					t.Fatalf("Shutdown: %v after %v", err, took)
				}
				if took > bound {
					t.Errorf("Shutdown took %v, bound %v", took.Round(time.Millisecond), bound)
				}
			})
		}
	}
}

// localAddr is a loopback source address other than 127.0.0.1: Linux
// routes all of 127.0.0.0/8 to lo, so a test can connect from several
// source addresses.
func localAddr(ip string) net.Addr {
	return &net.TCPAddr{IP: net.ParseIP(ip)}
}

// TestUnauthenticatedWatchFlood: a caller without a credential that opens
// many health Watch streams, which are public and long-lived, holds at
// most the server's cap of them; the rest are refused with
// RESOURCE_EXHAUSTED, Check still answers, and a watch that ends frees its
// place.
func TestUnauthenticatedWatchFlood(t *testing.T) {
	const watches = 3 * server.DefaultMaxHealthWatches
	srv := newTestServer(t, fromRemote(server.ConnLimits{}))
	hc := testkit.NewSharedH2C(t, srv.URL)
	health := grpchealth.NewClient(hc, srv.URL, connect.WithGRPC())
	res := sampleResources()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type watch struct {
		events <-chan grpchealth.WatchEvent
		cancel context.CancelFunc
	}
	var open []watch
	refused := 0
	for i := range watches {
		wctx, wcancel := context.WithCancel(ctx)
		events := health.Watch(wctx, &grpchealth.CheckRequest{})
		select {
		case ev := <-events:
			switch {
			case ev.Err == nil && ev.Response.Status == grpchealth.StatusServing:
				open = append(open, watch{events, wcancel})
				continue
			case connect.CodeOf(ev.Err) == connect.CodeResourceExhausted:
				refused++
			default:
				t.Fatalf("watch %d: %+v", i, ev)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("watch %d: no answer within 10s", i)
		}
		wcancel()
	}
	res.Stop()
	t.Logf("%d health watches without a credential: %d open, %d refused; %v", watches, len(open), refused, res)
	if len(open) != server.DefaultMaxHealthWatches {
		t.Fatalf("%d watches open, want the cap %d", len(open), server.DefaultMaxHealthWatches)
	}
	if _, err := health.Check(ctx, &grpchealth.CheckRequest{}); err != nil {
		t.Errorf("Check at the watch cap: %v", err)
	}
	// A watch that ends gives its place back.
	open[0].cancel()
	poll.Eventually(t, 10*time.Second, 20*time.Millisecond, func() error {
		wctx, wcancel := context.WithCancel(ctx)
		ev := <-health.Watch(wctx, &grpchealth.CheckRequest{})
		if ev.Err != nil {
			wcancel()
			return ev.Err
		}
		open[0].cancel = wcancel
		return nil
	})
	for _, w := range open {
		w.cancel()
	}
}
