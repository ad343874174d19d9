package server_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"

	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	"github.com/honeydo/realtime/gen/honeydo/realtime/v1/realtimev1connect"
	"github.com/honeydo/realtime/gen/honeydo/shopping/v1/shoppingv1connect"
	"github.com/honeydo/realtime/internal/auth"
	"github.com/honeydo/realtime/internal/broker"
	"github.com/honeydo/realtime/internal/server"
	"github.com/honeydo/realtime/internal/shopping"
)

// testServer is a real realtimed server on a loopback port.
type testServer struct {
	*server.Server
	URL     string
	Key     *auth.DevKey
	Broker  *broker.Memory
	Emitter *broker.Emitter
}

type testOption func(*server.Config)

func newTestServer(t *testing.T, opts ...testOption) *testServer {
	t.Helper()
	dir := t.TempDir()
	key, err := auth.LoadOrCreateDevKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := auth.NewVerifier(auth.Config{Dev: key, DefaultHousehold: "home"})
	if err != nil {
		t.Fatal(err)
	}
	b := broker.NewMemory(broker.MemoryConfig{})
	t.Cleanup(func() { b.Close() })
	store, err := shopping.OpenStore(context.Background(), filepath.Join(dir, "shopping.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg := server.Config{
		Broker:    b,
		Verifier:  verifier,
		Shopping:  shopping.NewService(store, broker.NewEmitter(b), logger),
		Dev:       key,
		Logger:    logger,
		RateLimit: server.RateLimit{PerSecond: -1},
	}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln, "", "") }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return &testServer{Server: srv, URL: "http://" + ln.Addr().String(), Key: key, Broker: b, Emitter: broker.NewEmitter(b)}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// token mints a dev token for user in household.
func (s *testServer) token(t *testing.T, user, household string, ttl time.Duration) string {
	t.Helper()
	tok, _, err := s.Key.Mint(auth.MintOptions{UserID: user, HouseholdID: household, TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	return tok
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

func httpClient(t *testing.T, h2c bool) *http.Client {
	t.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	p := new(http.Protocols)
	if h2c {
		p.SetUnencryptedHTTP2(true)
	} else {
		p.SetHTTP1(true)
	}
	tr.Protocols = p
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
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

// bearer adds a token to every call of a client.
func bearer(token string) connect.ClientOption {
	return connect.WithInterceptors(bearerInterceptor(token))
}

type bearerInterceptor string

func (b bearerInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		req.Header().Set("Authorization", "Bearer "+string(b))
		return next(ctx, req)
	}
}

func (b bearerInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		conn.RequestHeader().Set("Authorization", "Bearer "+string(b))
		return conn
	}
}

func (bearerInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

func (s *testServer) realtimeClient(t *testing.T, kind clientKind, token string) realtimev1connect.RealtimeServiceClient {
	t.Helper()
	opts := append([]connect.ClientOption{bearer(token)}, kind.protocol...)
	return realtimev1connect.NewRealtimeServiceClient(httpClient(t, kind.h2c), s.URL, opts...)
}

func (s *testServer) shoppingClient(t *testing.T, token string) shoppingv1connect.ShoppingServiceClient {
	t.Helper()
	return shoppingv1connect.NewShoppingServiceClient(httpClient(t, false), s.URL, bearer(token))
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
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5s")
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

// checkFor polls fn until it returns nil or the timeout passes.
func checkFor(t *testing.T, timeout, interval time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", timeout, err)
		}
		time.Sleep(interval)
	}
}

// waitGoroutines waits until the goroutine count is back near base.
func waitGoroutines(t *testing.T, base int) {
	t.Helper()
	checkFor(t, 10*time.Second, 20*time.Millisecond, func() error {
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
