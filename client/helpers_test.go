package client_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/honeydo/realtime/client"
	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	systemv1 "github.com/honeydo/realtime/gen/honeydo/system/v1"
	"github.com/honeydo/realtime/internal/auth"
	"github.com/honeydo/realtime/internal/testkit"
	"github.com/honeydo/realtime/internal/testkit/poll"
)

// testServer is a real realtimed server on a loopback port that can be
// stopped and started again at the same address (see [testkit.Server]),
// with this package's publish and token helpers.
type testServer struct{ *testkit.Server }

func newTestServer(t *testing.T, opts ...testkit.Option) *testServer {
	t.Helper()
	return &testServer{testkit.StartServer(t, opts...)}
}

// publish sends a notification to a household and returns its id.
func (s *testServer) publish(t *testing.T, household, message string) string {
	t.Helper()
	id, err := s.tryPublish(household, message)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// tryPublish is publish for goroutines that publish while the test
// restarts the server: Restart(false) leaves Emitter as it is.
func (s *testServer) tryPublish(household, message string) (string, error) {
	sent, err := s.Emitter.ToHousehold(context.Background(), household, notification(message))
	if err != nil {
		return "", err
	}
	return sent.ID, nil
}

func notification(message string) *realtimev1.Event {
	return &realtimev1.Event{Payload: &realtimev1.Event_Notification{Notification: &systemv1.Notification{
		Level: systemv1.Notification_LEVEL_INFO, Message: message,
	}}}
}

// tokens mints a fresh dev token on every call and counts the calls.
type tokens struct {
	key             *auth.DevKey
	user, household string
	ttl             time.Duration
	calls           atomic.Int32
}

func (s *testServer) tokens(user string, ttl time.Duration) *tokens {
	return &tokens{key: s.Key, user: user, household: "home", ttl: ttl}
}

func (tk *tokens) Token(context.Context) (string, error) {
	tk.calls.Add(1)
	tok, _, err := tk.key.Mint(auth.MintOptions{UserID: tk.user, HouseholdID: tk.household, TTL: tk.ttl})
	return tok, err
}

// conns is a dialer that remembers its connections so a test can cut them
// all at once, as a flaky network would.
type conns struct {
	mu    sync.Mutex
	open  map[net.Conn]struct{}
	dials int
}

func (c *conns) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open == nil {
		c.open = make(map[net.Conn]struct{})
	}
	c.open[conn] = struct{}{}
	c.dials++
	return &trackedConn{Conn: conn, owner: c}, nil
}

// cut closes every open connection and returns how many it closed.
func (c *conns) cut() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(c.open)
	for conn := range c.open {
		conn.Close()
		delete(c.open, conn)
	}
	return n
}

type trackedConn struct {
	net.Conn
	owner *conns
}

func (c *trackedConn) Close() error {
	c.owner.mu.Lock()
	delete(c.owner.open, c.Conn)
	c.owner.mu.Unlock()
	return c.Conn.Close()
}

// httpClient returns an HTTP client for the test (see [testkit.HTTPClient])
// that dials through c.
func (c *conns) httpClient(t *testing.T, h2c bool) *http.Client {
	t.Helper()
	hc := testkit.HTTPClient(t, h2c)
	hc.Transport.(*http.Transport).DialContext = c.dial
	return hc
}

// protocolCase is one way the client reaches the server.
type protocolCase struct {
	name     string
	protocol client.Protocol
	h2c      bool
}

var protocolCases = []protocolCase{
	{"connect-http1", client.ProtocolConnect, false},
	{"grpc-h2c", client.ProtocolGRPC, true},
	{"grpcweb-http1", client.ProtocolGRPCWeb, false},
}

// recorder is a Handler that records the ids it receives.
type recorder struct {
	mu     sync.Mutex
	ids    []string
	cursor string
}

func (r *recorder) Handle(_ context.Context, ev *realtimev1.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ids = append(r.ids, ev.GetId())
	r.cursor = ev.GetCursor()
	return nil
}

// lastCursor is the cursor of the last event received.
func (r *recorder) lastCursor() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cursor
}

func (r *recorder) snapshot() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ids)
}

// statuses records what OnStatus reports.
type statuses struct {
	mu   sync.Mutex
	list []client.Status
}

func (s *statuses) OnStatus(st client.Status) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.list = append(s.list, st)
}

func (s *statuses) all() []client.Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.list)
}

func (s *statuses) count(state client.State) int {
	n := 0
	for _, st := range s.all() {
		if st.State == state {
			n++
		}
	}
	return n
}

// waitState waits until OnStatus has reported state at least n times.
func (s *statuses) waitState(t *testing.T, state client.State, n int) {
	t.Helper()
	poll.Eventually(t, 10*time.Second, 5*time.Millisecond, func() error {
		if got := s.count(state); got < n {
			return fmt.Errorf("%d × %v, want %d; statuses: %v", got, state, n, describe(s.all()))
		}
		return nil
	})
}

// reconnectErrs returns the errors of the Reconnecting statuses.
func (s *statuses) reconnectErrs() []error {
	var errs []error
	for _, st := range s.all() {
		if st.State == client.StateReconnecting {
			errs = append(errs, st.Err)
		}
	}
	return errs
}

func describe(list []client.Status) string {
	var b strings.Builder
	for _, st := range list {
		fmt.Fprintf(&b, "\n  %v", st.State)
		switch st.State {
		case client.StateConnected:
			fmt.Fprintf(&b, " resumed=%v reconnected=%v", st.Resumed, st.Reconnected)
		case client.StateReconnecting:
			fmt.Fprintf(&b, " attempt=%d delay=%v err=%v", st.Attempt, st.Delay, st.Err)
		case client.StateResync:
			fmt.Fprintf(&b, " reason=%v", st.Reason)
		}
	}
	return b.String()
}

// running is a Subscribe call in a goroutine.
type running struct {
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, opts client.Options, h client.Handler) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- client.Subscribe(ctx, opts, h) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels the subscriber and waits for Subscribe to return
// context.Canceled.
func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	select {
	case err, ok := <-r.done:
		if ok && !errors.Is(err, context.Canceled) {
			t.Errorf("Subscribe returned %v, want context.Canceled", err)
		}
		if ok {
			close(r.done)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Subscribe did not return within 5s of cancellation")
	}
}

// wait waits for Subscribe to return on its own.
func (r *running) wait(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case err := <-r.done:
		close(r.done)
		return err
	case <-time.After(timeout):
		t.Fatalf("Subscribe did not return within %v", timeout)
	}
	return nil
}

// flow publishes notifications to household "home" at a steady pace until
// stopped, recording the ids in publish order.
type flow struct {
	srv  *testServer
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	ids  []string
}

func startFlow(t *testing.T, srv *testServer, every time.Duration) *flow {
	t.Helper()
	f := &flow{srv: srv, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(f.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-f.stop:
				return
			case <-tick.C:
			}
			id, err := srv.tryPublish("home", fmt.Sprint("event ", i))
			if err != nil {
				t.Errorf("publish: %v", err)
				return
			}
			f.mu.Lock()
			f.ids = append(f.ids, id)
			f.mu.Unlock()
		}
	}()
	t.Cleanup(func() { f.end() })
	return f
}

func (f *flow) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.ids)
}

// waitCount waits until at least n events have been published.
func (f *flow) waitCount(t *testing.T, n int) {
	t.Helper()
	poll.Eventually(t, 10*time.Second, 2*time.Millisecond, func() error {
		if got := f.count(); got < n {
			return fmt.Errorf("%d events published, want %d", got, n)
		}
		return nil
	})
}

// end stops publishing and returns the ids published.
func (f *flow) end() []string {
	select {
	case <-f.stop:
	default:
		close(f.stop)
	}
	<-f.done
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.ids)
}

// exactlyOnce publishes a last event and, once the recorder has it, checks
// that the recorder saw want followed by it: every event once, in order.
// Events of one room arrive in publish order, so a duplicate or a gap
// anywhere before the last event would show.
func exactlyOnce(t *testing.T, srv *testServer, rec *recorder, want []string) {
	t.Helper()
	last := srv.publish(t, "home", "last")
	want = append(slices.Clone(want), last)
	// The bound is on progress, not on the whole replay: a starved client
	// may take long to replay hundreds of events, but it must keep moving.
	const stall = 20 * time.Second
	seen, moved := -1, time.Now()
	for {
		got := rec.snapshot()
		if len(got) > 0 && got[len(got)-1] == last {
			break
		}
		if len(got) != seen {
			seen, moved = len(got), time.Now()
		} else if time.Since(moved) > stall {
			t.Fatalf("no event for %v: last event not received (%d of %d events)", stall, len(got), len(want))
		}
		time.Sleep(5 * time.Millisecond)
	}
	got := rec.snapshot()
	if !slices.Equal(got, want) {
		t.Fatalf("received %d events, want %d; first difference at %d", len(got), len(want), firstDiff(got, want))
	}
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// checkGoroutines registers, first, a cleanup that runs last: once the
// subscriber, the server and the transports are gone, the goroutine count
// must return to what it was when the test started.
func checkGoroutines(t *testing.T) {
	t.Helper()
	base := runtime.NumGoroutine()
	t.Cleanup(func() {
		poll.Eventually(t, 5*time.Second, 10*time.Millisecond, func() error {
			if n := runtime.NumGoroutine(); n > base {
				return fmt.Errorf("%d goroutines, %d when the test started", n, base)
			}
			return nil
		})
	})
}

// wantCode fails unless err has code.
func wantCode(t *testing.T, err error, code connect.Code) {
	t.Helper()
	if got := connect.CodeOf(err); got != code {
		t.Fatalf("error %v has code %v, want %v", err, got, code)
	}
}

// proxy forwards TCP connections to a target until frozen: a frozen
// connection stays open but forwards nothing in either direction, like a
// peer that vanished without closing. Connections made after a freeze
// forward normally.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	pairs  []*proxyPair
	wg     sync.WaitGroup
	// frozenAll makes new connections frozen too (freezeAll), like a
	// SIGSTOPped server whose kernel still accepts connections.
	frozenAll bool
}

type proxyPair struct {
	client, server net.Conn
	frozen         atomic.Bool
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) URL() string { return "http://" + p.ln.Addr().String() }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		pair := &proxyPair{client: c, server: s}
		p.mu.Lock()
		pair.frozen.Store(p.frozenAll)
		p.pairs = append(p.pairs, pair)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(pair, c, s)
		go p.pipe(pair, s, c)
	}
}

func (p *proxy) pipe(pair *proxyPair, from, to net.Conn) {
	defer p.wg.Done()
	defer pair.client.Close()
	defer pair.server.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := from.Read(buf)
		if n > 0 && !pair.frozen.Load() {
			if _, werr := to.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// freeze stops forwarding on every current connection.
func (p *proxy) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pair := range p.pairs {
		pair.frozen.Store(true)
	}
}

// freezeAll freezes every current connection and every later one.
func (p *proxy) freezeAll() {
	p.mu.Lock()
	p.frozenAll = true
	p.mu.Unlock()
	p.freeze()
}

func (p *proxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for _, pair := range p.pairs {
		pair.client.Close()
		pair.server.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// incompressible returns n characters of random base64, different on every
// call, which gzip cannot shrink much.
func incompressible(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n*3/4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}
