package server_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/honeydo/realtime/client"
	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	"github.com/honeydo/realtime/gen/honeydo/realtime/v1/realtimev1connect"
	"github.com/honeydo/realtime/internal/broker"
	"github.com/honeydo/realtime/internal/metrics"
	"github.com/honeydo/realtime/internal/module"
	"github.com/honeydo/realtime/internal/server"
	"github.com/honeydo/realtime/internal/testkit"
	"github.com/honeydo/realtime/internal/testkit/poll"
)

// TestOfflineWithinWindow: a client is away for 30 s while 1,000 events are
// published to its household; on return it gets all of them, in order, once.
// The broker's clock moves 30 ms per event, so the history ages as it would
// over 30 s without the test waiting for them.
func TestOfflineWithinWindow(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	b := broker.NewMemory(broker.MemoryConfig{Now: clock.Now})
	srv := newTestServer(t, func(c *server.Config) { c.Broker = b })
	emit := module.NewEmitter(b)
	ctx := context.Background()
	c := srv.realtimeClient(t, clientKinds[0], srv.Token(t, "bob", "home", 5*time.Minute))
	s := subscribe(t, c, "")
	cursor := s.Welcome.GetCursor()
	s.Close()
	const n = 1000
	for i := range n {
		clock.Advance(30 * time.Second / n)
		if _, err := emit.ToHousehold(ctx, "home", notification(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	r := subscribe(t, c, cursor)
	if r.Welcome.GetResume() != realtimev1.ResumeStatus_RESUME_STATUS_RESUMED {
		t.Fatalf("resume = %v", r.Welcome.GetResume())
	}
	for i := range n {
		if got := r.next(t).GetNotification().GetMessage(); got != fmt.Sprint(i) {
			t.Fatalf("event %d is %q", i, got)
		}
	}
	r.quiet(t)
}

// TestOfflinePastWindow: history has moved on; the welcome says so.
func TestOfflinePastWindow(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	b := broker.NewMemory(broker.MemoryConfig{
		History: broker.HistoryLimits{MaxAge: 200 * time.Millisecond},
		Now:     clock.Now,
	})
	srv := newTestServer(t, func(c *server.Config) { c.Broker = b })
	emit := module.NewEmitter(b)
	ctx := context.Background()
	c := srv.realtimeClient(t, clientKinds[0], srv.Token(t, "bob", "home", time.Minute))
	s := subscribe(t, c, "")
	cursor := s.Welcome.GetCursor()
	s.Close()
	emit.ToHousehold(ctx, "home", notification("missed"))
	clock.Advance(300 * time.Millisecond) // past the window: the event is evicted
	r := subscribe(t, c, cursor)
	if r.Welcome.GetResume() != realtimev1.ResumeStatus_RESUME_STATUS_EXPIRED {
		t.Fatalf("resume = %v, want EXPIRED", r.Welcome.GetResume())
	}
	r.quiet(t)
}

// fakeClock is a broker clock that moves only when told; it starts at the
// real time so that event times stay plausible.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Now()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// TestSlowReaderRecovers: a subscriber that stops reading is cut off; when it
// comes back with its cursor it gets everything it missed.
func TestSlowReaderRecovers(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, func(c *server.Config) { c.QueueSize = 8 })
	ctx := context.Background()
	c, rs := tinyWindowStream(t, srv, "slow")
	cursor := rs.Msg().GetWelcome().GetCursor()
	big := incompressible(16 << 10) // gzip would shrink zeros to nothing
	sent := 0
	for ; srv.Broker.Stats().Subscriptions == 1 && sent < 5000; sent++ {
		if _, err := srv.Emitter.ToHousehold(ctx, "home", notification(fmt.Sprint(sent, big))); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Microsecond)
	}
	if srv.Broker.Stats().Subscriptions != 0 {
		t.Fatalf("not cut off after %d events", sent)
	}
	// Read what did arrive before the cut, keeping the cursor of the last.
	received := 0
	for rs.Receive() {
		for _, ev := range rs.Msg().GetEvents().GetEvents() {
			if ev.GetNotification().GetMessage() != fmt.Sprint(received, big) {
				t.Fatalf("event %d out of order", received)
			}
			cursor = ev.GetCursor()
			received++
		}
	}
	wantCode(t, rs.Err(), connect.CodeResourceExhausted)
	rs.Close()
	r := subscribe(t, c, cursor)
	if r.Welcome.GetResume() != realtimev1.ResumeStatus_RESUME_STATUS_RESUMED {
		t.Fatalf("resume = %v", r.Welcome.GetResume())
	}
	for i := received; i < sent; i++ {
		if got := r.next(t).GetNotification().GetMessage(); got != fmt.Sprint(i, big) {
			t.Fatalf("replayed event %d is wrong", i)
		}
	}
	r.quiet(t)
	t.Logf("cut off after %d published, %d read before the cut, %d replayed", sent, received, sent-received)
}

// TestReconnectStorm: 1,000 clients reconnect at the same moment with their
// cursors; all resume with nothing lost, and Ping keeps answering meanwhile.
func TestReconnectStorm(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	ctx := context.Background()
	const clients = 1000
	const households = 50
	kinds := []clientKind{clientKinds[1], clientKinds[3]} // h2c: many streams per connection
	// Connections open before the storm, 50 streams on each: a cold h2c
	// Transport would dial one per concurrent request (see SharedH2C).
	conns := make([]realtimeClientPair, clients/50)
	shared := make([]*testkit.SharedH2C, len(conns))
	for i := range conns {
		shared[i] = testkit.NewSharedH2C(t, srv.URL)
		conns[i] = realtimeClientPair{kind: kinds[i%len(kinds)], http: shared[i]}
	}
	tokens := make([]string, clients)
	cursors := make([]string, clients)
	for i := range clients {
		tokens[i] = srv.Token(t, fmt.Sprint("u", i), fmt.Sprint("h", i%households), 5*time.Minute)
	}
	clientFor := func(i int) *stream {
		p := conns[i%len(conns)]
		c := p.client(srv.URL, tokens[i])
		s, err := trySubscribe(t, c, cursors[i])
		if err != nil {
			t.Errorf("client %d: %v", i, err)
			return nil
		}
		return s
	}
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s := clientFor(i); s != nil {
				cursors[i] = s.Welcome.GetCursor()
				s.Close()
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	// While everyone is away, each household gets 20 events.
	for e := range 20 {
		for h := range households {
			srv.Emitter.ToHousehold(ctx, fmt.Sprint("h", h), notification(fmt.Sprint(e)))
		}
	}
	// Ping from the side during the storm.
	stopPing := make(chan struct{})
	var pings, pingErrs atomic.Int64
	pinger := srv.realtimeClient(t, clientKinds[0], srv.Token(t, "pinger", "home", time.Minute))
	pingDone := make(chan struct{})
	go func() {
		defer close(pingDone)
		for {
			select {
			case <-stopPing:
				return
			default:
			}
			if _, err := pinger.Ping(ctx, connect.NewRequest(&realtimev1.PingRequest{})); err != nil {
				pingErrs.Add(1)
			}
			pings.Add(1)
		}
	}()
	start := make(chan struct{})
	lost := atomic.Int64{}
	// The bound is on the storm's progress, not on each client: on a busy
	// machine the last of 1,000 replays may start long after the first,
	// but some client must receive an event every little while.
	var delivered atomic.Int64
	stalled := make(chan struct{})
	watchDone := make(chan struct{})
	defer close(watchDone)
	go func() {
		const stall = 30 * time.Second
		seen, moved := int64(-1), time.Now()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-watchDone:
				return
			case <-tick.C:
			}
			if n := delivered.Load(); n != seen {
				seen, moved = n, time.Now()
			} else if time.Since(moved) > stall {
				close(stalled)
				return
			}
		}
	}()
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			s := clientFor(i)
			if s == nil {
				return
			}
			defer s.Close()
			if s.Welcome.GetResume() != realtimev1.ResumeStatus_RESUME_STATUS_RESUMED {
				t.Errorf("client %d: resume %v", i, s.Welcome.GetResume())
				return
			}
			for e := range 20 {
				select {
				case ev := <-s.events:
					if ev.GetNotification().GetMessage() != fmt.Sprint(e) {
						t.Errorf("client %d: event %d is %v", i, e, ev)
						return
					}
					delivered.Add(1)
				case <-stalled:
					lost.Add(int64(20 - e))
					return
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	close(stopPing)
	<-pingDone
	if lost.Load() > 0 {
		t.Fatalf("%d events not received: no client got an event for 30 s", lost.Load())
	}
	if pings.Load() == 0 || pingErrs.Load() > 0 {
		t.Fatalf("pings during the storm: %d, failed %d", pings.Load(), pingErrs.Load())
	}
	for i, c := range shared {
		if d := c.Dials(); d != 1 {
			t.Errorf("h2c client %d dialled %d connections, want 1", i, d)
		}
	}
	t.Logf("%d clients resumed 20 events each; %d pings answered meanwhile", clients, pings.Load())
}

// realtimeClientPair shares one HTTP client (one h2c connection) among many
// streams of different users.
type realtimeClientPair struct {
	kind clientKind
	http connect.HTTPClient
}

func (p realtimeClientPair) client(url, token string) realtimev1connect.RealtimeServiceClient {
	opts := append([]connect.ClientOption{client.BearerToken(token)}, p.kind.protocol...)
	return realtimev1connect.NewRealtimeServiceClient(p.http, url, opts...)
}

// TestSubscribeCancelCycles: 4,000 subscribe/cancel cycles leave no
// goroutine, stream or subscription behind, and memory does not grow.
//
// Not parallel: it reads the process's heap.
func TestSubscribeCancelCycles(t *testing.T) {
	srv := newTestServer(t)
	c := srv.realtimeClient(t, clientKinds[1], srv.Token(t, "churn", "home", 5*time.Minute))
	subscribe(t, c, "").Close()
	const cycles, workers = 4000, 8
	run := func(n int) {
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < n; i += workers {
					s, err := openStream(t, c, "")
					if err != nil {
						t.Errorf("cycle %d: %v", i, err)
						return
					}
					s.Close()
				}
			}()
		}
		wg.Wait()
	}
	run(500) // warm pools and connections
	poll.Eventually(t, 5*time.Second, 10*time.Millisecond, func() error {
		if n := srv.OpenStreams(); n != 0 {
			return fmt.Errorf("%d streams open", n)
		}
		return nil
	})
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	base := runtime.NumGoroutine()
	run(cycles)
	poll.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		if n := srv.OpenStreams(); n != 0 {
			return fmt.Errorf("%d streams open", n)
		}
		if n := srv.Broker.Stats().Subscriptions; n != 0 {
			return fmt.Errorf("%d subscriptions in the broker", n)
		}
		return nil
	})
	waitGoroutines(t, base)
	runtime.GC()
	runtime.ReadMemStats(&after)
	growth := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("heap %d -> %d bytes after %d cycles", before.HeapAlloc, after.HeapAlloc, cycles)
	if growth > 4<<20 {
		t.Fatalf("heap grew by %d bytes over %d cycles", growth, cycles)
	}
}

// TestStuckWriterIsDropped: a client that stops reading pins no goroutine or
// connection: the frame write that it never accepts times out and the
// stream ends, even before its queue would overflow.
func TestStuckWriterIsDropped(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, func(c *server.Config) {
		c.QueueSize = 1 << 20 // never a slow-consumer cut: the write timeout must act
		c.StreamWriteTimeout = 300 * time.Millisecond
	})
	ctx := context.Background()
	c := realtimev1connect.NewRealtimeServiceClient(tinyWindowClient(t), srv.URL, client.BearerToken(srv.Token(t, "stuck", "home", time.Minute)))
	rs, err := c.Subscribe(ctx, connect.NewRequest(&realtimev1.SubscribeRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	if !rs.Receive() {
		t.Fatal(rs.Err())
	}
	big := incompressible(64 << 10)
	poll.Eventually(t, 20*time.Second, 10*time.Millisecond, func() error {
		if n := srv.OpenStreams(); n != 0 {
			srv.Emitter.ToUser(ctx, "stuck", notification(big))
			return fmt.Errorf("%d streams open", n)
		}
		return nil
	})
	if n := srv.Broker.Stats().Subscriptions; n != 0 {
		t.Fatalf("%d subscriptions left", n)
	}
}

// TestPausedReaderIsNotCut: a subscriber that stops reading for a moment
// while a fast publisher goes on is not cut as a slow consumer: once the
// stream is a quarter of its queue behind, each publish waits for it, and
// after the pause the subscriber gets every event in order. Without the
// wait the publisher fills the queue within the pause.
//
// The first events are big, so that a few of them fill the client's
// socket and the stream's writes stall at once; the rest are small, so
// that after the pause the client reads them many to a frame. The test
// then needs the client, however slow the machine, to keep up with only
// one event per wait of the publisher.
func TestPausedReaderIsNotCut(t *testing.T) {
	t.Parallel()
	const queue, events, big = 128, 600, 8
	m := metrics.New()
	var emit *module.Emitter
	srv := newTestServer(t, func(c *server.Config) {
		c.QueueSize = queue
		c.Metrics = m
		c.Broker = metrics.InstrumentBroker(c.Broker, m)
		emit = module.NewEmitter(c.Broker)
	})
	ctx := context.Background()
	_, rs := tinyWindowStream(t, srv, "pauser")
	filler := incompressible(16 << 10) // gzip would shrink a repeated byte to nothing
	text := func(i int) string {
		if i < big {
			return fmt.Sprint(i, filler)
		}
		return fmt.Sprint(i)
	}
	published := make(chan error, 1)
	go func() {
		for i := range events {
			if _, err := emit.ToHousehold(ctx, "home", notification(text(i))); err != nil {
				published <- err
				return
			}
		}
		published <- nil
	}()
	// The pause: short against what the queue allows a waiting publisher
	// ((queue - queue/4) waits of up to 2 ms each), long against what it
	// takes a publisher that does not wait to publish them all.
	time.Sleep(30 * time.Millisecond)
	received := 0
	for received < events && rs.Receive() {
		for _, ev := range rs.Msg().GetEvents().GetEvents() {
			if got := ev.GetNotification().GetMessage(); got != text(received) {
				t.Fatalf("event %d is %.20q…", received, got)
			}
			received++
		}
	}
	if received < events {
		t.Fatalf("stream ended after %d of %d events: %v", received, events, rs.Err())
	}
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	// The waits are what operators see of it.
	got, err := m.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if got["realtime_publish_waits_total"] < 1 || got["realtime_publish_wait_seconds_total"] <= 0 {
		t.Fatalf("publish waits %v, %v s; want some", got["realtime_publish_waits_total"], got["realtime_publish_wait_seconds_total"])
	}
	t.Logf("%v publishes waited, %.3f s in all", got["realtime_publish_waits_total"], got["realtime_publish_wait_seconds_total"])
}
