package broker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	systemv1 "github.com/honeydo/realtime/gen/honeydo/system/v1"
	"github.com/honeydo/realtime/internal/room"
)

// brokerSuite is the behaviour every Broker backend must show. Each backend's
// test file runs it with a constructor for a fresh broker.
func brokerSuite(t *testing.T, newBroker func(t *testing.T) Broker) {
	t.Run("RoomOrderAndIsolation", func(t *testing.T) { testRoomOrderAndIsolation(t, newBroker(t)) })
	t.Run("ExceptUser", func(t *testing.T) { testExceptUser(t, newBroker(t)) })
	t.Run("ToOthersReachesTheActorsOtherStreams", func(t *testing.T) { testToOthers(t, newBroker(t)) })
	t.Run("SlowConsumer", func(t *testing.T) { testSlowConsumer(t, newBroker(t)) })
	t.Run("ResumeExactlyOnce", func(t *testing.T) { testResumeExactlyOnce(t, newBroker(t)) })
	t.Run("ResumeSeamUnderLoad", func(t *testing.T) { testResumeSeamUnderLoad(t, newBroker(t)) })
	t.Run("ResumeForeignCursorGetsOwnRoomsOnly", func(t *testing.T) { testResumeForeignCursor(t, newBroker(t)) })
	t.Run("ResumeRepeatedRoomOnce", func(t *testing.T) { testResumeRepeatedRoom(t, newBroker(t)) })
	t.Run("StampedIDAndCursor", func(t *testing.T) { testStampedIDAndCursor(t, newBroker(t)) })
	t.Run("InvalidPublish", func(t *testing.T) { testInvalidPublish(t, newBroker(t)) })
	t.Run("ReadyUntilClosed", func(t *testing.T) { testReadyUntilClosed(t, newBroker(t)) })
	t.Run("NotifyInsteadOfReady", func(t *testing.T) { testNotify(t, newBroker(t)) })
}

// waitReadiness follows b's readiness signal, without polling, until Ready
// answers as want says (nil error or not) and returns that answer.
func waitReadiness(t *testing.T, b Broker, ready bool, timeout time.Duration) error {
	t.Helper()
	deadline := time.After(timeout)
	for {
		changed, err := b.Ready()
		if (err == nil) == ready {
			return err
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("Ready still answers %v after %v", err, timeout)
		}
	}
}

func testReadyUntilClosed(t *testing.T, b Broker) {
	changed, err := b.Ready()
	if err != nil {
		t.Fatalf("a new broker is not ready: %v", err)
	}
	if err := b.(Closer).Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not signal a change of readiness")
	}
	if err := waitReadiness(t, b, false, 5*time.Second); !errors.Is(err, ErrClosed) {
		t.Fatalf("Ready after Close = %v, want ErrClosed", err)
	}
}

// testNotify: once Notify is set, every signal reaches it instead of Ready:
// a publish, a replayed history (a resume) and the subscription's end.
func testNotify(t *testing.T, b Broker) {
	since := publish(t, b, Target{Room: room.Household("elsewhere")}, "marker").Position
	publish(t, b, Target{Room: room.Household("h")}, "before")
	for _, resume := range []bool{true, false} {
		var at *Position
		if resume {
			at = &since
		}
		s := subscribe(t, b, fmt.Sprint("u", resume), []room.Name{room.Household("h")}, at)
		calls := make(chan struct{}, 64)
		s.Notify(func() bool { calls <- struct{}{}; return false })
		waitCall := func(what string) {
			t.Helper()
			select {
			case <-calls:
			case <-time.After(10 * time.Second):
				t.Fatalf("resume=%v: no call for %s", resume, what)
			}
		}
		waitCall("Notify itself")
		live := fmt.Sprint("live-", resume)
		want := []string{live}
		if resume {
			want = []string{"before", live}
		}
		publish(t, b, Target{Room: room.Household("h")}, live)
		var got []string
		var buf []*Message
		for deadline := time.Now().Add(10 * time.Second); len(got) < len(want) && time.Now().Before(deadline); {
			buf = s.Next(buf)
			for _, m := range buf {
				got = append(got, m.Event.GetNotification().GetMessage())
			}
			if len(got) < len(want) {
				waitCall("a publish")
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("resume=%v: got %v, want %v", resume, got, want)
		}
		select {
		case <-s.Ready():
			t.Fatalf("resume=%v: Ready was signalled though Notify was set", resume)
		default:
		}
		for len(calls) > 0 {
			<-calls
		}
		s.Close()
		waitCall("the end")
	}
}

func note(text string) *realtimev1.Event {
	return &realtimev1.Event{Payload: &realtimev1.Event_Notification{Notification: &systemv1.Notification{Message: text}}}
}

func subscribe(t *testing.T, b Broker, user string, rooms []room.Name, since *Position) *Subscription {
	t.Helper()
	s, err := b.Subscribe(context.Background(), SubscribeOptions{UserID: user, Rooms: rooms, Since: since})
	if err != nil {
		t.Fatalf("Subscribe(%s): %v", user, err)
	}
	t.Cleanup(s.Close)
	return s
}

func publish(t *testing.T, b Broker, target Target, text string) *Message {
	t.Helper()
	m, err := b.Publish(context.Background(), target, note(text))
	if err != nil {
		t.Fatalf("Publish(%s): %v", text, err)
	}
	return m
}

// collect takes messages from s until it has n or the timeout passes.
func collect(t *testing.T, s *Subscription, n int, timeout time.Duration) []string {
	t.Helper()
	var got []string
	deadline := time.After(timeout)
	var buf []*Message
	for len(got) < n {
		buf = s.Next(buf)
		for _, m := range buf {
			got = append(got, m.Event.GetNotification().GetMessage())
		}
		if len(got) >= n {
			break
		}
		select {
		case <-s.Ready():
		case <-deadline:
			return got
		}
	}
	return got
}

// assertQuiet checks that nothing more arrives within a short while.
func assertQuiet(t *testing.T, s *Subscription) {
	t.Helper()
	if extra := collect(t, s, 1, 50*time.Millisecond); len(extra) > 0 {
		t.Fatalf("unexpected extra messages: %v", extra)
	}
}

func testRoomOrderAndIsolation(t *testing.T, b Broker) {
	households := []string{"h0", "h1", "h2"}
	subs := map[string]*Subscription{}
	for _, h := range households {
		subs[h] = subscribe(t, b, "u-"+h, []room.Name{room.User("u-" + h), room.Household(h), room.Broadcast}, nil)
	}
	want := map[string][]string{}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 300 {
		h := households[rng.IntN(len(households))]
		text := fmt.Sprintf("%s-%d", h, i)
		publish(t, b, Target{Room: room.Household(h)}, text)
		want[h] = append(want[h], text)
	}
	publish(t, b, Target{Room: room.Broadcast}, "all")
	for _, h := range households {
		want[h] = append(want[h], "all")
		got := collect(t, subs[h], len(want[h]), 5*time.Second)
		if fmt.Sprint(got) != fmt.Sprint(want[h]) {
			t.Fatalf("household %s got %v, want %v", h, got, want[h])
		}
		assertQuiet(t, subs[h])
	}
}

func testExceptUser(t *testing.T, b Broker) {
	alice := subscribe(t, b, "alice", []room.Name{room.User("alice"), room.Household("home")}, nil)
	bob := subscribe(t, b, "bob", []room.Name{room.User("bob"), room.Household("home")}, nil)
	publish(t, b, Target{Room: room.Household("home"), ExceptUserID: "alice"}, "for-others")
	publish(t, b, Target{Room: room.User("alice")}, "for-alice")
	if got := collect(t, bob, 1, 2*time.Second); fmt.Sprint(got) != "[for-others]" {
		t.Fatalf("bob got %v", got)
	}
	if got := collect(t, alice, 1, 2*time.Second); fmt.Sprint(got) != "[for-alice]" {
		t.Fatalf("alice got %v", got)
	}
	assertQuiet(t, alice)
	assertQuiet(t, bob)
}

// testToOthers checks what the module emitter's ToOthers publishes (the
// household room, no ExceptUserID, the event tagged with the acting call's
// origin; package module tests that it takes the origin from the context):
// every stream of the household gets the event, the actor's two devices
// included, with its origin kept live and replayed alike, so that only the
// acting client can tell it apart; another household gets nothing.
func testToOthers(t *testing.T, b Broker) {
	rooms := func(user, household string) []room.Name {
		return []room.Name{room.User(user), room.Household(household), room.Broadcast}
	}
	start := publish(t, b, Target{Room: room.Household("elsewhere")}, "before").Position
	subs := map[string]*Subscription{
		"alice-phone":  subscribe(t, b, "alice", rooms("alice", "home"), nil),
		"alice-laptop": subscribe(t, b, "alice", rooms("alice", "home"), nil),
		"bob":          subscribe(t, b, "bob", rooms("bob", "home"), nil),
	}
	carol := subscribe(t, b, "carol", rooms("carol", "elsewhere"), &start)
	toOthers := Target{Room: room.Household("home")}
	ev := note("oat milk")
	ev.SenderUserId = "alice"
	ev.Origin = "tab-1"
	msg, err := b.Publish(context.Background(), toOthers, ev)
	if err != nil {
		t.Fatal(err)
	}
	if got := msg.Event.GetOrigin(); got != "tab-1" {
		t.Fatalf("published origin = %q, want tab-1", got)
	}
	// No origin (a background job): the event carries none.
	publish(t, b, toOthers, "system")
	for name, s := range subs {
		got := collectEvents(t, s, 2, 5*time.Second)
		if len(got) != 2 {
			t.Fatalf("%s got %d events, want 2", name, len(got))
		}
		if got[0].GetOrigin() != "tab-1" || got[0].GetSenderUserId() != "alice" || got[1].GetOrigin() != "" {
			t.Fatalf("%s got origins %q, %q (sender %q)", name, got[0].GetOrigin(), got[1].GetOrigin(), got[0].GetSenderUserId())
		}
		assertQuiet(t, s)
	}
	assertQuiet(t, carol)

	// A stream that resumes from before gets the same origin from history.
	replay := subscribe(t, b, "alice", rooms("alice", "home"), &start)
	if got := collectEvents(t, replay, 2, 5*time.Second); len(got) != 2 || got[0].GetOrigin() != "tab-1" {
		t.Fatalf("replayed %v", got)
	}
}

// collectEvents is collect keeping whole events.
func collectEvents(t *testing.T, s *Subscription, n int, timeout time.Duration) []*realtimev1.Event {
	t.Helper()
	var got []*realtimev1.Event
	deadline := time.After(timeout)
	var buf []*Message
	for len(got) < n {
		buf = s.Next(buf)
		for _, m := range buf {
			got = append(got, m.Event)
		}
		if len(got) >= n {
			break
		}
		select {
		case <-s.Ready():
		case <-deadline:
			return got
		}
	}
	return got
}

func testSlowConsumer(t *testing.T, b Broker) {
	slow, err := b.Subscribe(context.Background(), SubscribeOptions{UserID: "slow", Rooms: []room.Name{room.Household("home")}, QueueSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fast := subscribe(t, b, "fast", []room.Name{room.Household("home")}, nil)
	for i := range 10 {
		publish(t, b, Target{Room: room.Household("home")}, fmt.Sprint(i))
	}
	select {
	case <-slow.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("slow subscriber was not cut off")
	}
	if !errors.Is(slow.Err(), ErrSlowConsumer) {
		t.Fatalf("slow.Err() = %v, want ErrSlowConsumer", slow.Err())
	}
	if got := collect(t, fast, 10, 5*time.Second); len(got) != 10 {
		t.Fatalf("fast subscriber got %d of 10", len(got))
	}
}

func testResumeExactlyOnce(t *testing.T, b Broker) {
	rooms := []room.Name{room.User("bob"), room.Household("home")}
	first := subscribe(t, b, "bob", rooms, nil)
	for i := range 5 {
		publish(t, b, Target{Room: room.Household("home")}, fmt.Sprint(i))
	}
	var buf []*Message
	deadline := time.After(5 * time.Second)
	for len(buf) < 3 {
		buf = append(buf, first.Next(nil)...)
		if len(buf) >= 3 {
			break
		}
		select {
		case <-first.Ready():
		case <-deadline:
			t.Fatal("timed out")
		}
	}
	last := buf[2].Position // handled 0,1,2; 3 and 4 may be lost with the stream
	first.Close()
	for i := 5; i < 8; i++ {
		publish(t, b, Target{Room: room.Household("home")}, fmt.Sprint(i))
	}
	publish(t, b, Target{Room: room.Household("other")}, "not-bobs")
	second := subscribe(t, b, "bob", rooms, &last)
	if second.Resume != ResumeOK {
		t.Fatalf("Resume = %v, want resumed", second.Resume)
	}
	publish(t, b, Target{Room: room.Household("home")}, "8")
	if got := collect(t, second, 6, 5*time.Second); fmt.Sprint(got) != "[3 4 5 6 7 8]" {
		t.Fatalf("resumed stream got %v", got)
	}
	assertQuiet(t, second)
}

// testResumeSeamUnderLoad resumes while another goroutine publishes, and
// checks the seam between replay and live: every event exactly once, in
// order.
func testResumeSeamUnderLoad(t *testing.T, b Broker) {
	home := room.Household("seam")
	const total = 2000
	start := publish(t, b, Target{Room: home}, "0").Position
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 1; i < total; i++ {
			if _, err := b.Publish(context.Background(), Target{Room: home}, note(fmt.Sprint(i))); err != nil {
				t.Errorf("publish: %v", err)
				return
			}
		}
	}()
	time.Sleep(time.Millisecond) // let some publishes land before the resume
	s, err := b.Subscribe(context.Background(), SubscribeOptions{UserID: "u", Rooms: []room.Name{home}, Since: &start, QueueSize: total})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	wg.Wait()
	got := collect(t, s, total-1, 10*time.Second)
	if len(got) != total-1 {
		t.Fatalf("got %d events, want %d", len(got), total-1)
	}
	for i, text := range got {
		if text != fmt.Sprint(i+1) {
			t.Fatalf("event %d is %q, want %d (gap or duplicate at the seam)", i, text, i+1)
		}
	}
}

func testResumeForeignCursor(t *testing.T, b Broker) {
	carolMsg := publish(t, b, Target{Room: room.Household("other")}, "carol-secret")
	publish(t, b, Target{Room: room.Household("other")}, "carol-secret-2")
	// Bob presents a cursor from Carol's stream: he must get nothing of hers.
	pos := carolMsg.Position
	pos.Offset--
	bob := subscribe(t, b, "bob", []room.Name{room.Household("home")}, &pos)
	if bob.Resume != ResumeOK {
		t.Fatalf("Resume = %v", bob.Resume)
	}
	assertQuiet(t, bob)
}

// testResumeRepeatedRoom subscribes with a home listed twice (a dev token's
// extra rooms may repeat the user's own): live events arrive once, and so
// must replayed ones.
func testResumeRepeatedRoom(t *testing.T, b Broker) {
	rooms := []room.Name{room.User("bob"), room.Broadcast, room.Broadcast}
	start := publish(t, b, Target{Room: room.Broadcast}, "0").Position
	publish(t, b, Target{Room: room.Broadcast}, "1")
	publish(t, b, Target{Room: room.User("bob")}, "2")
	s := subscribe(t, b, "bob", rooms, &start)
	if s.Resume != ResumeOK {
		t.Fatalf("Resume = %v, want resumed", s.Resume)
	}
	publish(t, b, Target{Room: room.Broadcast}, "3")
	if got := collect(t, s, 3, 5*time.Second); fmt.Sprint(got) != "[1 2 3]" {
		t.Fatalf("resumed stream got %v, want [1 2 3]", got)
	}
	assertQuiet(t, s)
}

// testStampedIDAndCursor: Publish returns the event with the cursor of its
// position and, when the publisher gave none, an id made of it; subscribers
// receive the same id, cursor and time (on JetStream, from the event that
// the node's consumer read back from the stream).
func testStampedIDAndCursor(t *testing.T, b Broker) {
	s := subscribe(t, b, "u", []room.Name{room.Broadcast}, nil)
	mine := note("with id")
	mine.Id = "evt-1"
	var sent []*Message
	for _, ev := range []*realtimev1.Event{note("no id"), mine} {
		m, err := b.Publish(context.Background(), Target{Room: room.Broadcast}, ev)
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, m)
	}
	if p := sent[0].Position; sent[0].Event.Id != fmt.Sprintf("%s-%d", p.Epoch, p.Offset) {
		t.Errorf("id %q for an event published without one at %v", sent[0].Event.Id, p)
	}
	if sent[1].Event.Id != "evt-1" {
		t.Errorf("id %q, want the publisher's evt-1", sent[1].Event.Id)
	}
	var got, buf []*Message
	deadline := time.After(10 * time.Second)
	for len(got) < len(sent) {
		buf = s.Next(buf)
		got = append(got, buf...)
		if len(got) >= len(sent) {
			break
		}
		select {
		case <-s.Ready():
		case <-deadline:
			t.Fatalf("received %d of %d events", len(got), len(sent))
		}
	}
	for i, m := range sent {
		if m.Event.Cursor != m.Position.Cursor() || !m.Time.Equal(m.Event.Time.AsTime()) {
			t.Errorf("published event %d: cursor %q at %v, time %v vs event time %v", i, m.Event.Cursor, m.Position, m.Time, m.Event.Time.AsTime())
		}
		r := got[i]
		if r.Position != m.Position || r.Event.Id != m.Event.Id || r.Event.Cursor != m.Event.Cursor || !r.Time.Equal(m.Time) || !proto.Equal(r.Event, m.Event) {
			t.Errorf("received event %d = %v at %v (%v), published %v at %v (%v)", i, r.Event, r.Position, r.Time, m.Event, m.Position, m.Time)
		}
	}
}

func testInvalidPublish(t *testing.T, b Broker) {
	ctx := context.Background()
	cases := []struct {
		name   string
		target Target
		ev     *realtimev1.Event
	}{
		{"no payload", Target{Room: room.Broadcast}, &realtimev1.Event{}},
		{"nil event", Target{Room: room.Broadcast}, nil},
		{"no room", Target{}, note("x")},
		{"cursor set", Target{Room: room.Broadcast}, &realtimev1.Event{Cursor: "a_1", Payload: note("x").Payload}},
		{"origin with a space", Target{Room: room.Broadcast}, &realtimev1.Event{Origin: "tab 1", Payload: note("x").Payload}},
		{"origin too long", Target{Room: room.Broadcast}, &realtimev1.Event{Origin: strings.Repeat("o", 129), Payload: note("x").Payload}},
	}
	for _, c := range cases {
		if _, err := b.Publish(ctx, c.target, c.ev); !errors.Is(err, ErrInvalidEvent) {
			t.Errorf("%s: err = %v, want ErrInvalidEvent", c.name, err)
		}
	}
}
