package server_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"runtime"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/honeydo/realtime/client"
	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	"github.com/honeydo/realtime/gen/honeydo/realtime/v1/realtimev1connect"
	"github.com/honeydo/realtime/gen/honeydo/shopping/v1/shoppingv1connect"
	"github.com/honeydo/realtime/internal/testkit"
	"github.com/honeydo/realtime/internal/testkit/poll"
)

// testServer is a real realtimed server on a loopback port, with this
// package's client helpers.
type testServer struct{ *testkit.Server }

func newTestServer(t *testing.T, opts ...testkit.Option) *testServer {
	t.Helper()
	return &testServer{testkit.StartServer(t, opts...)}
}

// clientKind is one way a real client reaches the server.
type clientKind struct {
	name     string
	h2c      bool
	protocol []connect.ClientOption
}

var clientKinds = []clientKind{
	{name: "connect-http1"},
	{name: "connect-h2c", h2c: true},
	{name: "connect-json-http1", protocol: []connect.ClientOption{connect.WithProtoJSON()}},
	{name: "grpc-h2c", h2c: true, protocol: []connect.ClientOption{connect.WithGRPC()}},
	{name: "grpcweb-http1", protocol: []connect.ClientOption{connect.WithGRPCWeb()}},
	{name: "grpcweb-h2c", h2c: true, protocol: []connect.ClientOption{connect.WithGRPCWeb()}},
}

// tinyWindowClient is an HTTP/1.1 client whose sockets have a small, fixed
// receive buffer: a reader that stops reading then stalls the server's
// writes after a few frames, instead of after the tens of megabytes that
// loopback autotuning would otherwise absorb.
func tinyWindowClient(t *testing.T) *http.Client {
	t.Helper()
	dialer := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 8<<10)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	p := new(http.Protocols)
	p.SetHTTP1(true)
	tr := &http.Transport{DialContext: dialer.DialContext, Protocols: p}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// tinyWindowStream opens a stream of user in household "home" through a
// [tinyWindowClient] and reads its welcome: the test then reads the rest,
// or stops reading to stall the server's writes. The stream is closed at
// cleanup; the client is returned for the test's next stream.
func tinyWindowStream(t *testing.T, srv *testServer, user string) (realtimev1connect.RealtimeServiceClient, *connect.ServerStreamForClient[realtimev1.SubscribeResponse]) {
	t.Helper()
	c := realtimev1connect.NewRealtimeServiceClient(tinyWindowClient(t), srv.URL, client.BearerToken(srv.Token(t, user, "home", time.Minute)))
	rs, err := c.Subscribe(context.Background(), connect.NewRequest(&realtimev1.SubscribeRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rs.Close() })
	if !rs.Receive() {
		t.Fatal(rs.Err())
	}
	return c, rs
}

func (s *testServer) realtimeClient(t *testing.T, kind clientKind, token string) realtimev1connect.RealtimeServiceClient {
	t.Helper()
	opts := append([]connect.ClientOption{client.BearerToken(token)}, kind.protocol...)
	return realtimev1connect.NewRealtimeServiceClient(testkit.HTTPClient(t, kind.h2c), s.URL, opts...)
}

func (s *testServer) shoppingClient(t *testing.T, token string) shoppingv1connect.ShoppingServiceClient {
	t.Helper()
	return shoppingv1connect.NewShoppingServiceClient(testkit.HTTPClient(t, false), s.URL, client.BearerToken(token))
}

// stream is an open Subscribe stream whose frames a goroutine reads into a
// channel, so tests can wait with timeouts.
type stream struct {
	Welcome *realtimev1.Welcome
	events  chan *realtimev1.Event
	done    chan error
	cancel  context.CancelFunc
}

func subscribe(t *testing.T, c realtimev1connect.RealtimeServiceClient, cursor string) *stream {
	t.Helper()
	s, err := trySubscribe(t, c, cursor)
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	return s
}

func trySubscribe(t *testing.T, c realtimev1connect.RealtimeServiceClient, cursor string) (*stream, error) {
	t.Helper()
	s, err := openStream(t, c, cursor)
	if s != nil {
		t.Cleanup(s.Close)
	}
	return s, err
}

// openStream is trySubscribe without a cleanup registered on t: the caller
// must Close the stream. For loops that open thousands of streams, where
// the cleanups themselves would hold memory until the test ends.
func openStream(t *testing.T, c realtimev1connect.RealtimeServiceClient, cursor string) (*stream, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	rs, err := c.Subscribe(ctx, connect.NewRequest(&realtimev1.SubscribeRequest{ResumeCursor: cursor}))
	if err != nil {
		cancel()
		return nil, err
	}
	if !rs.Receive() {
		cancel()
		err := rs.Err()
		rs.Close()
		if err == nil {
			err = errors.New("stream ended before welcome")
		}
		return nil, err
	}
	w := rs.Msg().GetWelcome()
	if w == nil {
		cancel()
		t.Fatalf("first frame is %T, want welcome", rs.Msg().GetFrame())
	}
	s := &stream{Welcome: w, events: make(chan *realtimev1.Event, 256), done: make(chan error, 1), cancel: cancel}
	go func() {
		defer close(s.events)
		for rs.Receive() {
			for _, ev := range rs.Msg().GetEvents().GetEvents() {
				s.events <- ev
			}
		}
		s.done <- rs.Err()
		rs.Close()
	}()
	return s, nil
}

// Close cancels the stream and waits for its reader to finish.
func (s *stream) Close() {
	s.cancel()
	for range s.events {
	}
}

// next waits for the next event.
func (s *stream) next(t *testing.T) *realtimev1.Event {
	t.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			t.Fatalf("stream ended: %v", <-s.done)
		}
		return ev
	case <-time.After(20 * time.Second):
		t.Fatal("no event within 20s")
	}
	return nil
}

// quiet asserts that no event arrives within a short while.
func (s *stream) quiet(t *testing.T) {
	t.Helper()
	select {
	case ev, ok := <-s.events:
		if ok {
			t.Fatalf("unexpected event %v", ev)
		}
	case <-time.After(100 * time.Millisecond):
	}
}

// end waits for the stream to end and returns its error.
func (s *stream) end(t *testing.T, timeout time.Duration) error {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case _, ok := <-s.events:
			if !ok {
				return <-s.done
			}
		case <-deadline:
			t.Fatalf("stream did not end within %v", timeout)
		}
	}
}

// waitGoroutines waits until the goroutine count is back near base.
func waitGoroutines(t *testing.T, base int) {
	t.Helper()
	poll.Eventually(t, 10*time.Second, 20*time.Millisecond, func() error {
		if n := runtime.NumGoroutine(); n > base+5 {
			return fmt.Errorf("%d goroutines, baseline %d", n, base)
		}
		return nil
	})
}

func wantCode(t *testing.T, err error, code connect.Code) {
	t.Helper()
	if got := connect.CodeOf(err); got != code {
		t.Fatalf("error %v has code %v, want %v", err, got, code)
	}
}

// incompressible returns n random letters: event payloads that gzip, which
// the server applies above 1 KiB, cannot shrink.
func incompressible(n int) string {
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = letters[rand.IntN(len(letters))]
	}
	return string(b)
}

// publishUntilCut publishes 16 KiB events to household "home", whose two
// subscriptions are fast's and a stalled one's, in lockstep with fast,
// until the stalled one has been cut: fast must get every event, undelayed.
func publishUntilCut(t *testing.T, srv *testServer, fast *stream) {
	t.Helper()
	big := incompressible(16 << 10) // gzip would shrink a repeated byte to nothing
	const limit = 4000
	i := 0
	for ; i < limit && srv.Broker.Stats().Subscriptions == 2; i++ {
		if _, err := srv.Emitter.ToHousehold(context.Background(), "home", notification(big+fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
		if got, want := fast.next(t).GetNotification().GetMessage(), big+fmt.Sprint(i); got != want {
			t.Fatalf("fast subscriber's event %d is wrong", i)
		}
	}
	if i == limit {
		t.Fatalf("stalled subscriber still open after %d events", limit)
	}
	t.Logf("stalled subscriber cut off after %d events of 16 KiB", i)
}
