package module_test

import (
	"context"
	"errors"
	"testing"
	"time"

	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	systemv1 "github.com/honeydo/realtime/gen/honeydo/system/v1"
	"github.com/honeydo/realtime/internal/auth"
	"github.com/honeydo/realtime/internal/broker"
	"github.com/honeydo/realtime/internal/module"
	"github.com/honeydo/realtime/internal/room"
	"github.com/honeydo/realtime/internal/rpcerr"
)

func note(text string) *realtimev1.Event {
	return &realtimev1.Event{Payload: &realtimev1.Event_Notification{Notification: &systemv1.Notification{Message: text}}}
}

// join subscribes user to the rooms a stream of user in household joins.
func join(t *testing.T, b broker.Broker, user, household string) *broker.Subscription {
	t.Helper()
	s, err := b.Subscribe(context.Background(), broker.SubscribeOptions{
		UserID: user,
		Rooms:  []room.Name{room.User(user), room.Household(household), room.Broadcast},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

const fenceText = "fence"

// received broadcasts a fence through emit and returns every event s got
// before it: events of one broker arrive in publish order, so "nothing
// else arrived" is an observation rather than a sleep.
func received(t *testing.T, emit *module.Emitter, s *broker.Subscription) []*realtimev1.Event {
	t.Helper()
	if _, err := emit.Broadcast(context.Background(), note(fenceText)); err != nil {
		t.Fatal(err)
	}
	var got []*realtimev1.Event
	timeout := time.After(10 * time.Second)
	var buf []*broker.Message
	for {
		buf = s.Next(buf)
		for _, m := range buf {
			if m.Event.GetNotification().GetMessage() == fenceText {
				return got
			}
			got = append(got, m.Event)
		}
		select {
		case <-s.Ready():
		case <-timeout:
			t.Fatalf("no fence after %d events", len(got))
		}
	}
}

// TestToOthers: ToOthers publishes to every stream of the household, the
// actor's other devices included, tagged with the origin of the acting call
// from the context (an origin already on the event wins; without one in the
// context the event carries none) and naming the verified caller as sender;
// another household gets nothing. What it returns is what was published.
func TestToOthers(t *testing.T) {
	b := broker.NewMemory(broker.MemoryConfig{})
	t.Cleanup(func() { b.Close() })
	emit := module.NewEmitter(b)
	subs := map[string]*broker.Subscription{
		"alice-phone":  join(t, b, "alice", "home"),
		"alice-laptop": join(t, b, "alice", "home"),
		"bob":          join(t, b, "bob", "home"),
	}
	carol := join(t, b, "carol", "elsewhere")

	alice := auth.WithPrincipal(context.Background(), &auth.Principal{UserID: "alice", HouseholdID: "home"})
	sent, err := emit.ToOthers(broker.WithOrigin(alice, "tab-1"), "home", note("oat milk"))
	if err != nil {
		t.Fatal(err)
	}
	kept := note("kept")
	kept.Origin = "tab-2"
	if _, err := emit.ToOthers(broker.WithOrigin(alice, "tab-1"), "home", kept); err != nil {
		t.Fatal(err)
	}
	if _, err := emit.ToOthers(context.Background(), "home", note("system")); err != nil {
		t.Fatal(err)
	}

	for name, s := range subs {
		got := received(t, emit, s)
		if len(got) != 3 {
			t.Fatalf("%s got %d events, want 3", name, len(got))
		}
		if got[0].GetId() != sent.ID || got[0].GetCursor() != sent.Cursor || !got[0].GetTime().AsTime().Equal(sent.Time) {
			t.Fatalf("%s got id %q cursor %q, Sent is %+v", name, got[0].GetId(), got[0].GetCursor(), sent)
		}
		for i, want := range []struct{ origin, sender string }{{"tab-1", "alice"}, {"tab-2", "alice"}, {"", ""}} {
			if got[i].GetOrigin() != want.origin || got[i].GetSenderUserId() != want.sender {
				t.Fatalf("%s event %d: origin %q sender %q, want %q %q", name, i, got[i].GetOrigin(), got[i].GetSenderUserId(), want.origin, want.sender)
			}
		}
	}
	if got := received(t, emit, carol); len(got) != 0 {
		t.Fatalf("another household got %v", got)
	}
}

// TestEmitErrors: a missing id and a broker's refusal come back as
// *rpcerr.PublishError wrapping the cause.
func TestEmitErrors(t *testing.T) {
	b := broker.NewMemory(broker.MemoryConfig{})
	t.Cleanup(func() { b.Close() })
	emit := module.NewEmitter(b)
	ctx := context.Background()
	for name, call := range map[string]func() (module.Sent, error){
		"ToUser":      func() (module.Sent, error) { return emit.ToUser(ctx, "", note("x")) },
		"ToHousehold": func() (module.Sent, error) { return emit.ToHousehold(ctx, "", note("x")) },
		"ToOthers":    func() (module.Sent, error) { return emit.ToOthers(ctx, "", note("x")) },
	} {
		if _, err := call(); !errors.As(err, new(*rpcerr.PublishError)) {
			t.Errorf("%s without an id: %v, want a PublishError", name, err)
		}
	}
	if _, err := emit.Broadcast(ctx, &realtimev1.Event{}); !errors.As(err, new(*rpcerr.PublishError)) || !errors.Is(err, broker.ErrInvalidEvent) {
		t.Errorf("Broadcast without a payload: %v, want a PublishError wrapping ErrInvalidEvent", err)
	}
}

// TestEmitWithoutWaiting: an emit waits for a stream of its audience that
// is far behind (the in-memory broker's PublishWaits counts it) unless it
// says WithoutWaiting, as a handler emitting inside a transaction must.
func TestEmitWithoutWaiting(t *testing.T) {
	for _, tc := range []struct {
		name      string
		opts      []module.EmitOption
		wantWaits bool
	}{
		{"by default", nil, true},
		{"WithoutWaiting", []module.EmitOption{module.WithoutWaiting()}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := broker.NewMemory(broker.MemoryConfig{})
			defer b.Close()
			emit := module.NewEmitter(b)
			// Never drained: from the 4th event on it is a quarter of its
			// 8-event queue behind.
			s, err := b.Subscribe(context.Background(), broker.SubscribeOptions{UserID: "u", Rooms: []room.Name{room.Household("home")}, QueueSize: 8})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			for range 5 {
				if _, err := emit.ToHousehold(context.Background(), "home", note("x"), tc.opts...); err != nil {
					t.Fatal(err)
				}
			}
			if n, _ := b.PublishWaits(); (n > 0) != tc.wantWaits {
				t.Fatalf("%d publishes waited; want some: %v", n, tc.wantWaits)
			}
		})
	}
}
