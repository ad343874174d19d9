package broker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/honeydo/realtime/internal/room"
)

func TestMemory(t *testing.T) {
	t.Parallel()
	brokerSuite(t, func(t *testing.T) Broker {
		m := NewMemory(MemoryConfig{})
		t.Cleanup(func() { m.Close() })
		return m
	})
}

// fakeClock is a settable clock for history ageing.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

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

func TestMemoryHistoryLimits(t *testing.T) {
	t.Parallel()
	home := room.Household("home")
	tests := []struct {
		name    string
		limits  HistoryLimits
		publish int
		advance time.Duration
		// resumeFrom is the offset the client handled last.
		resumeFrom uint64
		want       ResumeStatus
		replayed   int
	}{
		{name: "within all limits", publish: 10, resumeFrom: 3, want: ResumeOK, replayed: 7},
		{name: "from the very start", publish: 10, resumeFrom: 0, want: ResumeOK, replayed: 10},
		{name: "count limit evicted the gap", limits: HistoryLimits{MaxEvents: 5}, publish: 10, resumeFrom: 3, want: ResumeExpired},
		{name: "count limit kept the gap", limits: HistoryLimits{MaxEvents: 5}, publish: 10, resumeFrom: 5, want: ResumeOK, replayed: 5},
		{name: "byte limit", limits: HistoryLimits{MaxBytes: 1}, publish: 10, resumeFrom: 8, want: ResumeExpired},
		{name: "age limit", limits: HistoryLimits{MaxAge: time.Minute}, publish: 10, advance: 2 * time.Minute, resumeFrom: 9, want: ResumeExpired},
		{name: "up to date after age eviction", limits: HistoryLimits{MaxAge: time.Minute}, publish: 10, advance: 2 * time.Minute, resumeFrom: 10, want: ResumeOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
			m := NewMemory(MemoryConfig{History: tt.limits, Now: clock.Now})
			defer m.Close()
			for i := range tt.publish {
				publish(t, m, Target{Room: home}, fmt.Sprint(i))
			}
			clock.Advance(tt.advance)
			since := Position{Epoch: m.Epoch(), Offset: tt.resumeFrom}
			s := subscribe(t, m, "u", []room.Name{home}, &since)
			if s.Resume != tt.want {
				t.Fatalf("Resume = %v, want %v", s.Resume, tt.want)
			}
			if got := len(s.Next(nil)); got != tt.replayed {
				t.Fatalf("replayed %d, want %d", got, tt.replayed)
			}
		})
	}
}

func TestMemoryHistoryStaysBounded(t *testing.T) {
	t.Parallel()
	m := NewMemory(MemoryConfig{History: HistoryLimits{MaxEvents: 100}})
	defer m.Close()
	for i := range 10_000 {
		publish(t, m, Target{Room: room.Household(fmt.Sprint(i % 37))}, "x")
	}
	st := m.Stats()
	if st.HistoryEvents != 100 {
		t.Fatalf("history holds %d events, want 100", st.HistoryEvents)
	}
	if cap(m.log.msgs) > 400 {
		t.Fatalf("log capacity %d grew past what is retained", cap(m.log.msgs))
	}
	if len(m.rooms) > 37 {
		t.Fatalf("%d home histories", len(m.rooms))
	}
}

func TestMemoryEpochAndInvalidCursor(t *testing.T) {
	t.Parallel()
	m := NewMemory(MemoryConfig{})
	defer m.Close()
	publish(t, m, Target{Room: room.Broadcast}, "x")
	restarted := &Position{Epoch: "oldepoch", Offset: 1}
	s := subscribe(t, m, "u", []room.Name{room.Broadcast}, restarted)
	if s.Resume != ResumeEpochChanged {
		t.Fatalf("Resume = %v, want epoch_changed", s.Resume)
	}
	if s.Start.Offset != 1 || s.Start.Epoch != m.Epoch() {
		t.Fatalf("Start = %+v, want the head of the current log", s.Start)
	}
	future := &Position{Epoch: m.Epoch(), Offset: 99}
	if _, err := m.Subscribe(context.Background(), SubscribeOptions{UserID: "u", Rooms: []room.Name{room.Broadcast}, Since: future}); !errors.Is(err, ErrInvalidCursor) {
		t.Fatalf("future cursor: err = %v, want ErrInvalidCursor", err)
	}
}

func TestMemoryCloseEndsSubscriptions(t *testing.T) {
	t.Parallel()
	m := NewMemory(MemoryConfig{})
	s := subscribe(t, m, "u", []room.Name{room.Broadcast}, nil)
	m.Close()
	select {
	case <-s.Done():
	case <-time.After(time.Second):
		t.Fatal("subscription not ended by Close")
	}
	if !errors.Is(s.Err(), ErrClosed) {
		t.Fatalf("Err = %v", s.Err())
	}
	if _, err := m.Publish(context.Background(), Target{Room: room.Broadcast}, note("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Publish after Close: %v", err)
	}
}

func TestMemoryUnsubscribeFreesRooms(t *testing.T) {
	t.Parallel()
	m := NewMemory(MemoryConfig{})
	defer m.Close()
	for range 10_000 {
		s, err := m.Subscribe(context.Background(), SubscribeOptions{UserID: "u", Rooms: []room.Name{room.User("u"), room.Household("h"), room.Broadcast}})
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		s.Close() // idempotent
	}
	if st := m.Stats(); st.Subscriptions != 0 || len(m.hub.rooms) != 0 {
		t.Fatalf("after churn: %d subscriptions, %d rooms indexed", st.Subscriptions, len(m.hub.rooms))
	}
}

// TestMemoryRandomUnsubscribe removes subscriptions in random order while
// publishing, and checks that exactly the remaining ones receive.
func TestMemoryRandomUnsubscribe(t *testing.T) {
	t.Parallel()
	m := NewMemory(MemoryConfig{})
	defer m.Close()
	rng := rand.New(rand.NewPCG(3, 4))
	const n = 300
	subs := make([]*Subscription, n)
	for i := range subs {
		// Every subscription lists the shared home twice: it must still get
		// each event once.
		subs[i] = subscribe(t, m, fmt.Sprint(i), []room.Name{room.User(fmt.Sprint(i)), "room:all", "room:all"}, nil)
	}
	open := map[int]bool{}
	for i := range n {
		open[i] = true
	}
	for round := 0; len(open) > 0; round++ {
		for k := range open {
			if rng.IntN(3) == 0 {
				subs[k].Close()
				delete(open, k)
			}
		}
		publish(t, m, Target{Room: "room:all"}, fmt.Sprint(round))
		for i, s := range subs {
			got := s.Next(nil)
			if open[i] && len(got) != 1 {
				t.Fatalf("round %d: open subscription %d got %d events", round, i, len(got))
			}
			if !open[i] && len(got) != 0 {
				t.Fatalf("round %d: closed subscription %d got %d events", round, i, len(got))
			}
		}
	}
	if st := m.Stats(); st.Subscriptions != 0 || len(m.hub.rooms) != 0 {
		t.Fatalf("%d subscriptions, %d rooms left", st.Subscriptions, len(m.hub.rooms))
	}
}

// TestMemorySlowConsumerGetsNoLaterEvent: once a publish overflowed a
// subscription, no later publish may reach it, even if its owner drains the
// queue before the subscription is ended; otherwise the owner would see a
// gap and keep a cursor past the missing event. Two publishers race a
// draining reader with a tiny queue, many times over.
func TestMemorySlowConsumerGetsNoLaterEvent(t *testing.T) {
	t.Parallel()
	m := NewMemory(MemoryConfig{History: HistoryLimits{MaxEvents: 64}})
	defer m.Close()
	for round := range 300 {
		s, err := m.Subscribe(context.Background(), SubscribeOptions{UserID: "u", Rooms: []room.Name{room.Broadcast}, QueueSize: 1})
		if err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
						m.Publish(context.Background(), Target{Room: room.Broadcast}, note("x"))
					}
				}
			}()
		}
		var last uint64
		var buf []*Message
		for done := false; !done; {
			select {
			case <-s.Ready():
			case <-s.Done():
				done = true
			}
			buf = s.Next(buf)
			for _, msg := range buf {
				if last != 0 && msg.Position.Offset != last+1 {
					t.Fatalf("round %d: offset %d after %d: the subscription skipped an event", round, msg.Position.Offset, last)
				}
				last = msg.Position.Offset
			}
		}
		close(stop)
		wg.Wait()
		s.Close()
	}
}

// TestSubscriptionNoPushAfterOverflow is the deterministic form of the test
// above, at the subscription itself: after a failed push, draining the queue
// must not make home for later events.
func TestSubscriptionNoPushAfterOverflow(t *testing.T) {
	t.Parallel()
	s := newSubscription(SubscribeOptions{UserID: "u", Rooms: []room.Name{room.Broadcast}, QueueSize: 1})
	msg := func(off uint64) *Message { return &Message{Position: Position{Epoch: "e", Offset: off}} }
	if ok, _, _ := s.push(msg(1)); !ok {
		t.Fatal("first push refused")
	}
	if ok, _, _ := s.push(msg(2)); ok {
		t.Fatal("push into a full queue accepted")
	}
	if got := s.Next(nil); len(got) != 1 || got[0].Position.Offset != 1 {
		t.Fatalf("Next = %v", got)
	}
	if ok, _, _ := s.push(msg(3)); ok {
		t.Fatal("push after an overflow accepted: the owner would skip event 2")
	}
}

// TestDeliverYieldsToFewStartedOwners: a publish yields to the owners it
// started from idle (Notify returned true), unless it started none or more
// than maxYieldFanout; owners that were already running do not count.
func TestDeliverYieldsToFewStartedOwners(t *testing.T) {
	for _, tc := range []struct {
		subs, started int
		want          bool
	}{
		{subs: 1, started: 0, want: false},
		{subs: 1, started: 1, want: true},
		{subs: 40, started: 3, want: true},
		{subs: maxYieldFanout, started: maxYieldFanout, want: true},
		{subs: maxYieldFanout + 1, started: maxYieldFanout + 1, want: false},
	} {
		t.Run(fmt.Sprintf("%d of %d", tc.started, tc.subs), func(t *testing.T) {
			m := NewMemory(MemoryConfig{})
			defer m.Close()
			home := room.Household("home")
			for i := range tc.subs {
				s := subscribe(t, m, fmt.Sprint("u", i), []room.Name{home}, nil)
				started := i < tc.started
				s.Notify(func() bool { return started })
			}
			m.mu.Lock()
			d := m.hub.deliver(&Message{Target: Target{Room: home}, Event: note("x")})
			m.mu.Unlock()
			if len(d.slow) != 0 || d.yield != tc.want {
				t.Fatalf("deliver: %d slow, yield %v; want 0, %v", len(d.slow), d.yield, tc.want)
			}
		})
	}
}

// TestPublisherWaitsForAStreamBehind: a publisher that outruns an owner
// which drains its queue slowly but steadily (a stream whose writes are
// slow for a while) waits for it instead of having it cut: the owner gets
// every event, in order. An owner that never drains is still cut
// (testSlowConsumer).
func TestPublisherWaitsForAStreamBehind(t *testing.T) {
	const queue, events = 64, 1000
	m := NewMemory(MemoryConfig{})
	defer m.Close()
	home := room.Household("home")
	s, err := m.Subscribe(context.Background(), SubscribeOptions{UserID: "u", Rooms: []room.Name{home}, QueueSize: queue})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got := make(chan []string, 1)
	go func() {
		var texts []string
		var batch []*Message
		for len(texts) < events {
			select {
			case <-s.Ready():
			case <-s.Done():
				got <- texts
				return
			}
			batch = s.Next(batch)
			for _, msg := range batch {
				texts = append(texts, msg.Event.GetNotification().GetMessage())
			}
			// A write that takes a while: far more events than the queue
			// holds are published meanwhile, unless the publisher waits.
			time.Sleep(2 * time.Millisecond)
		}
		got <- texts
	}()
	for i := range events {
		publish(t, m, Target{Room: home}, fmt.Sprint(i))
	}
	var texts []string
	select {
	case texts = <-got:
	case <-time.After(time.Minute):
		t.Fatal("the owner did not get the events within a minute")
	}
	if err := s.Err(); err != nil {
		t.Fatalf("subscription ended: %v, after %d of %d events", err, len(texts), events)
	}
	for i, text := range texts {
		if text != fmt.Sprint(i) {
			t.Fatalf("event %d is %q", i, text)
		}
	}
	if len(texts) != events {
		t.Fatalf("got %d of %d events", len(texts), events)
	}
}

// TestDeliverWaitsForTheFurthestBehind: of a room's subscriptions a
// quarter of their queue behind, the publisher waits for the one furthest
// behind (a nearer one's next take would release it while the other
// fills up); none that is not behind is waited for.
func TestDeliverWaitsForTheFurthestBehind(t *testing.T) {
	m := NewMemory(MemoryConfig{})
	defer m.Close()
	home := room.Household("home")
	// In the room's order: the first behind is not the furthest.
	backlog := []struct {
		user string
		n    int
	}{{"idle", 0}, {"near", 20}, {"far", 40}} // mark: 64/4 = 16
	subs := map[string]*Subscription{}
	for _, bl := range backlog {
		user, n := bl.user, bl.n
		s, err := m.Subscribe(context.Background(), SubscribeOptions{UserID: user, Rooms: []room.Name{home, room.User(user)}, QueueSize: 64})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		subs[user] = s
		for range n {
			publish(t, m, Target{Room: room.User(user)}, "x")
		}
	}
	m.mu.Lock()
	d := m.hub.deliver(&Message{Target: Target{Room: home}, Event: note("x")})
	m.mu.Unlock()
	if d.laggard != subs["far"] {
		for user, s := range subs {
			if s == d.laggard {
				t.Fatalf("waits for %q, want %q", user, "far")
			}
		}
		t.Fatalf("waits for none, want %q", "far")
	}
}
