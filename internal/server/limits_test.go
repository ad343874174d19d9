package server_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/honeydo/realtime/client"
	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	"github.com/honeydo/realtime/gen/honeydo/realtime/v1/realtimev1connect"
	"github.com/honeydo/realtime/internal/auth"
	"github.com/honeydo/realtime/internal/metrics"
	"github.com/honeydo/realtime/internal/server"
	"github.com/honeydo/realtime/internal/testkit"
	"github.com/honeydo/realtime/internal/testkit/poll"
)

// TestGateRefusesInEveryProtocol: a call without a valid credential gets
// its protocol's Unauthenticated from the gate, and each failure is
// verified, and counted, exactly once.
func TestGateRefusesInEveryProtocol(t *testing.T) {
	var mu sync.Mutex
	var reasons []string
	srv := newTestServer(t, func(c *server.Config) {
		v, err := auth.NewVerifier(auth.Config{Dev: c.Dev, DefaultHousehold: "home", OnFailure: func(r string) {
			mu.Lock()
			defer mu.Unlock()
			reasons = append(reasons, r)
		}})
		if err != nil {
			t.Fatal(err)
		}
		c.Verifier = v
	})
	take := func() string {
		mu.Lock()
		defer mu.Unlock()
		r := strings.Join(reasons, ",")
		reasons = nil
		return r
	}
	expired, _, err := srv.Key.Mint(auth.MintOptions{UserID: "alice", HouseholdID: "home", Now: time.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	failures := []struct {
		name, token, msg, reason string
	}{
		{"no token", "", "missing bearer token", "missing"},
		{"garbage", "not-a-token", "malformed token", "malformed"},
		{"expired", expired, "token expired", "expired"},
	}
	ctx := context.Background()
	for _, kind := range clientKinds {
		for _, f := range failures {
			t.Run(kind.name+"/"+f.name, func(t *testing.T) {
				take()
				c := srv.realtimeClient(t, kind, f.token)
				_, err := c.Ping(ctx, connect.NewRequest(&realtimev1.PingRequest{}))
				wantCodeMsg(t, "Ping", err, connect.CodeUnauthenticated, f.msg)
				_, err = trySubscribe(t, c, "")
				wantCodeMsg(t, "Subscribe", err, connect.CodeUnauthenticated, f.msg)
				if got, want := take(), f.reason+","+f.reason; got != want {
					t.Errorf("OnFailure heard %q, want %q", got, want)
				}
			})
		}
		t.Run(kind.name+"/valid", func(t *testing.T) {
			take()
			c := srv.realtimeClient(t, kind, srv.Token(t, "alice", "home", time.Minute))
			who, err := c.WhoAmI(ctx, connect.NewRequest(&realtimev1.WhoAmIRequest{}))
			if err != nil || who.Msg.GetUserId() != "alice" {
				t.Fatalf("WhoAmI = %v, %v", who, err)
			}
			subscribe(t, c, "").Close()
			if got := take(); got != "" {
				t.Errorf("OnFailure heard %q for a valid token", got)
			}
		})
	}
}

func wantCodeMsg(t *testing.T, what string, err error, code connect.Code, msg string) {
	t.Helper()
	if connect.CodeOf(err) != code || !strings.Contains(fmt.Sprint(err), msg) {
		t.Errorf("%s: %v, want %v containing %q", what, err, code, msg)
	}
}

// TestRefusalKeepsVerifiedHTTP2Connection: a refused call on an HTTP/2
// connection that already carries a verified stream does not close the
// connection (it would end other callers' calls); the stream lives on.
func TestRefusalKeepsVerifiedHTTP2Connection(t *testing.T) {
	srv := newTestServer(t, fromRemote(server.ConnLimits{}))
	hc := testkit.HTTPClient(t, true)
	kind := clientKinds[3] // gRPC over h2c
	pair := realtimeClientPair{kind: kind, http: hc}
	s := subscribe(t, pair.client(srv.URL, srv.Token(t, "alice", "home", time.Minute)), "")
	_, err := pair.client(srv.URL, "not-a-token").Ping(context.Background(), connect.NewRequest(&realtimev1.PingRequest{}))
	wantCode(t, err, connect.CodeUnauthenticated)
	var reused bool
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }})
	if _, err := pair.client(srv.URL, srv.Token(t, "bob", "home", time.Minute)).Ping(ctx, connect.NewRequest(&realtimev1.PingRequest{})); err != nil {
		t.Fatal(err)
	}
	if !reused {
		t.Error("a valid call after the refused one needed a new connection: the refusal closed the verified one")
	}
	if _, err := srv.Emitter.ToUser(context.Background(), "alice", notification("still here")); err != nil {
		t.Fatal(err)
	}
	if got := s.next(t).GetNotification().GetMessage(); got != "still here" {
		t.Fatalf("got %q", got)
	}
}

// TestSlowBodyIsCutOff: a caller that sends its request body one byte at a
// time is cut off at the request body timeout, over HTTP/1.1 and HTTP/2:
// with a valid token on our procedures, and without one on the public
// ones (health, reflection), which the gate does not guard.
func TestSlowBodyIsCutOff(t *testing.T) {
	const timeout = 300 * time.Millisecond
	srv := newTestServer(t, func(c *server.Config) { c.RequestBodyTimeout = timeout })
	bearer := "Bearer " + srv.Token(t, "alice", "home", time.Minute)
	health := attackRequest{"health", "/grpc.health.v1.Health/Check", "application/proto"}
	healthGRPC := attackRequest{"health grpc", "/grpc.health.v1.Health/Check", "application/grpc"}
	reflection := attackRequest{"reflection", "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", "application/grpc"}
	t.Run("http1", func(t *testing.T) {
		var conns []*slowBodyConn
		dial := func(req attackRequest, authorization string) {
			c, err := dialSlowBody(srv.Addr, nil, req, authorization)
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
		}
		for i := range 40 {
			dial(slowBodyRequests[i%len(slowBodyRequests)], bearer)
		}
		for range 10 {
			dial(health, "")
		}
		stop := make(chan struct{})
		dripped := dripAll(conns, 50*time.Millisecond, stop)
		defer func() { close(stop); <-dripped; closeAll(conns) }()
		start := time.Now()
		poll.Eventually(t, 15*time.Second, 20*time.Millisecond, func() error {
			if n := countOpen(conns); n > 0 {
				return fmt.Errorf("%d of %d connections %w", n, len(conns), errStillOpen)
			}
			return nil
		})
		t.Logf("%d slow-body connections closed %v after they started (timeout %v); answers %q (verified Ping), %q (health)",
			len(conns), time.Since(start).Round(time.Millisecond), timeout, conns[0].status.Load(), conns[len(conns)-1].status.Load())
	})
	t.Run("h2c", func(t *testing.T) {
		c, err := dialRawH2(srv.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { c.conn.Close(); <-c.closed }()
		<-c.settings
		n := uint32(0)
		open := func(req attackRequest, authorization string) {
			if err := c.openStream(2*n+1, srv.Addr, req, authorization); err != nil {
				t.Fatal(err)
			}
			n++
		}
		start := time.Now()
		for i := range 50 {
			open(slowBodyRequests[i%2], bearer) // Ping and Subscribe, Connect
		}
		for range 10 {
			open(healthGRPC, "")
			open(reflection, "")
		}
		poll.Eventually(t, 15*time.Second, 20*time.Millisecond, func() error {
			if got := c.ended.Load(); got < int64(n) {
				return fmt.Errorf("%d of %d streams ended", got, n)
			}
			return nil
		})
		t.Logf("%d streams without a body ended %v after they opened (timeout %v)", n, time.Since(start).Round(time.Millisecond), timeout)
		if c.isClosed() {
			t.Error("the verified connection was closed")
		}
	})
}

// TestStreamsOutliveRequestBodyTimeout: the body timeout covers only the
// request message; Subscribe streams go on after it in every protocol.
func TestStreamsOutliveRequestBodyTimeout(t *testing.T) {
	const timeout = 100 * time.Millisecond
	srv := newTestServer(t, func(c *server.Config) {
		c.RequestBodyTimeout = timeout
		c.Heartbeat = 50 * time.Millisecond
	})
	for _, kind := range clientKinds {
		t.Run(kind.name, func(t *testing.T) {
			c := srv.realtimeClient(t, kind, srv.Token(t, "alice", "home", time.Minute))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			rs, err := c.Subscribe(ctx, connect.NewRequest(&realtimev1.SubscribeRequest{}))
			if err != nil {
				t.Fatal(err)
			}
			defer rs.Close()
			// Heartbeats are the clock: ten of them take 5x the timeout.
			start := time.Now()
			for beats := 0; beats < 10; {
				if !rs.Receive() {
					t.Fatalf("stream ended after %v: %v", time.Since(start), rs.Err())
				}
				if rs.Msg().GetHeartbeat() != nil {
					beats++
				}
			}
			if _, err := c.Ping(ctx, connect.NewRequest(&realtimev1.PingRequest{})); err != nil {
				t.Fatalf("Ping after the stream's body timeout: %v", err)
			}
		})
	}
}

// rawCall sends one HTTP/1.1 request on conn and reads the response; it
// fails when the server closed the connection instead of answering.
func rawCall(conn net.Conn, br *bufio.Reader, addr, path, authorization string) (*http.Response, error) {
	req := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/proto\r\nContent-Length: 0\r\n", path, addr)
	if authorization != "" {
		req += "Authorization: " + authorization + "\r\n"
	}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		return nil, err
	}
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res, nil
}

// budgetConn is an HTTP/1.1 connection from a chosen loopback address.
type budgetConn struct {
	net.Conn
	br *bufio.Reader
}

// TestConnectionBudgetPerAddress: each source address may hold so many
// connections, and so many that have not yet presented a credential; other
// addresses are not affected, and a verified call frees an unauthenticated
// place.
func TestConnectionBudgetPerAddress(t *testing.T) {
	m := metrics.New()
	srv := newTestServer(t, fromRemote(server.ConnLimits{PerAddr: 4, UnauthenticatedPerAddr: 2}), func(c *server.Config) { c.Metrics = m })
	bearer := "Bearer " + srv.Token(t, "alice", "home", time.Minute)
	const health = "/grpc.health.v1.Health/Check"
	const ping = "/honeydo.realtime.v1.RealtimeService/Ping"
	var open []*budgetConn
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	// dial connects from ip and calls health (public: the connection stays
	// unauthenticated); it reports whether the server answered.
	dial := func(ip string) (*budgetConn, bool) {
		t.Helper()
		conn, err := (&net.Dialer{LocalAddr: localAddr(ip)}).Dial("tcp", srv.Addr)
		if errors.Is(err, syscall.EADDRNOTAVAIL) {
			t.Skipf("cannot connect from %s (only Linux routes all of 127.0.0.0/8 to loopback): %v", ip, err)
		}
		if err != nil {
			t.Fatal(err)
		}
		c := &budgetConn{Conn: conn, br: bufio.NewReader(conn)}
		res, err := rawCall(c, c.br, srv.Addr, health, "")
		if err != nil {
			conn.Close()
			return nil, false
		}
		if res.StatusCode != http.StatusOK {
			t.Fatalf("health: %s", res.Status)
		}
		open = append(open, c)
		return c, true
	}
	mustDial := func(ip string) *budgetConn {
		t.Helper()
		c, ok := dial(ip)
		if !ok {
			t.Fatalf("a connection from %s was refused", ip)
		}
		return c
	}
	mustRefuse := func(ip string) {
		t.Helper()
		if _, ok := dial(ip); ok {
			t.Fatalf("a connection from %s over its budget was accepted", ip)
		}
	}
	verify := func(c *budgetConn) {
		t.Helper()
		res, err := rawCall(c, c.br, srv.Addr, ping, bearer)
		if err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("Ping: %v %v", res, err)
		}
	}

	a1, a2 := mustDial("127.0.0.2"), mustDial("127.0.0.2")
	mustRefuse("127.0.0.2") // two unauthenticated already
	mustDial("127.0.0.3")   // another address has its own budget
	verify(a1)
	a3 := mustDial("127.0.0.2") // a1 left the unauthenticated budget
	mustRefuse("127.0.0.2")
	verify(a2)
	verify(a3)
	mustDial("127.0.0.2") // four open, one unauthenticated
	mustRefuse("127.0.0.2")
	a1.Close()
	poll.Eventually(t, 5*time.Second, 20*time.Millisecond, func() error {
		if _, ok := dial("127.0.0.2"); !ok {
			return errors.New("closing a connection did not free its place")
		}
		return nil
	})

	got, err := m.Gather()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("refused: %v by the unauthenticated budget, %v by the address budget",
		got["realtime_connections_refused_total{reason=unauthenticated_budget}"], got["realtime_connections_refused_total{reason=addr_budget}"])
	if got["realtime_connections_refused_total{reason=unauthenticated_budget}"] < 2 || got["realtime_connections_refused_total{reason=addr_budget}"] < 1 {
		t.Errorf("refusal metrics: %v", got)
	}
}

// TestMaxConcurrentStreamsIsAdvertised: the HTTP/2 stream limit reaches
// clients in the server's SETTINGS.
func TestMaxConcurrentStreamsIsAdvertised(t *testing.T) {
	for _, tt := range []struct{ set, want int }{{0, server.DefaultMaxConcurrentStreams}, {7, 7}} {
		srv := newTestServer(t, func(c *server.Config) { c.MaxConcurrentStreams = tt.set })
		c, err := dialRawH2(srv.Addr)
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-c.settings:
		case <-time.After(10 * time.Second):
			t.Fatal("no SETTINGS from the server")
		}
		if got := c.maxStreams.Load(); got != uint32(tt.want) {
			t.Errorf("MaxConcurrentStreams %d: server advertises %d, want %d", tt.set, got, tt.want)
		}
		c.conn.Close()
		<-c.closed
	}
}

// TestIdleStreamsOutliveTheWriteTimeout: the write timeout bounds one
// frame's write, not the quiet between frames. With heartbeats further apart
// than the timeout, every protocol's stream sits idle past it and goes on
// (an HTTP/2 stream whose write deadline passes is reset even while idle),
// then delivers an event and ends with the token's expiry code, which
// connect writes after the stream's last frame.
func TestIdleStreamsOutliveTheWriteTimeout(t *testing.T) {
	const writeTimeout = 50 * time.Millisecond
	srv := newTestServer(t, func(c *server.Config) {
		c.StreamWriteTimeout = writeTimeout
		c.Heartbeat = 300 * time.Millisecond
		c.TokenGrace = time.Millisecond
	})
	for i, kind := range clientKinds {
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel()
			user := fmt.Sprintf("idle-%d", i)
			c := srv.realtimeClient(t, kind, srv.Token(t, user, "home", 6*time.Second))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			rs, err := c.Subscribe(ctx, connect.NewRequest(&realtimev1.SubscribeRequest{}))
			if err != nil {
				t.Fatal(err)
			}
			defer rs.Close()
			for beats := 0; beats < 3; {
				if !rs.Receive() {
					t.Fatalf("stream ended after %d heartbeats: %v", beats, rs.Err())
				}
				if rs.Msg().GetHeartbeat() != nil {
					beats++
				}
			}
			srv.Emitter.ToUser(ctx, user, notification("after the quiet"))
			for {
				if !rs.Receive() {
					t.Fatalf("stream ended before the event: %v", rs.Err())
				}
				if evs := rs.Msg().GetEvents().GetEvents(); len(evs) > 0 {
					if got := evs[0].GetNotification().GetMessage(); len(evs) != 1 || got != "after the quiet" {
						t.Fatalf("%d events, the first %q", len(evs), got)
					}
					break
				}
			}
			for rs.Receive() {
			}
			wantCode(t, rs.Err(), connect.CodeUnauthenticated)
		})
	}
}

// TestKeptAliveConnectionOutlivesTheStreamDeadline: a stream's write
// deadline is the connection's over HTTP/1.1, the stream leaves one set for
// its final frame, and the connection goes back to the client's pool when
// the stream ends. A call that reuses it after that deadline has passed
// must still be answered: net/http clears the deadline after each
// response, which the stream relies on. Only streams kept in their
// handlers leave their connection to the pool: a direct stream's closes
// (TestDirectStreams).
func TestKeptAliveConnectionOutlivesTheStreamDeadline(t *testing.T) {
	const writeTimeout = 100 * time.Millisecond
	srv := newTestServer(t, func(c *server.Config) {
		c.NoDirectStreams = true
		c.StreamWriteTimeout = writeTimeout
		c.Heartbeat = 50 * time.Millisecond
		c.TokenGrace = time.Millisecond
	})
	hc := testkit.HTTPClient(t, false)
	c := realtimev1connect.NewRealtimeServiceClient(hc, srv.URL, client.BearerToken(srv.Token(t, "alice", "home", 2*time.Second)))
	s := subscribe(t, c, "")
	wantCode(t, s.end(t, 30*time.Second), connect.CodeUnauthenticated)
	ended := time.Now()
	// Longest possible deadline: the allowance (here the timeout) and a quarter.
	for time.Since(ended) < 4*writeTimeout {
		time.Sleep(writeTimeout / 2)
	}
	var reused bool
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }})
	pc := realtimev1connect.NewRealtimeServiceClient(hc, srv.URL, client.BearerToken(srv.Token(t, "alice", "home", time.Minute)))
	if _, err := pc.Ping(ctx, connect.NewRequest(&realtimev1.PingRequest{})); err != nil {
		t.Fatalf("Ping on the stream's connection (reused %v): %v", reused, err)
	}
	if !reused {
		t.Fatal("Ping did not reuse the stream's connection: the test proves nothing")
	}
}
