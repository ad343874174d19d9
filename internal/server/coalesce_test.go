package server

import (
	"context"
	"runtime"
	"testing"
	"time"

	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	systemv1 "github.com/honeydo/realtime/gen/honeydo/system/v1"
	"github.com/honeydo/realtime/internal/broker"
	"github.com/honeydo/realtime/internal/room"
)

// TestCoalesceWritesALoneEventAtOnce: at light load a stream must not yield
// before writing its one event (it did: one yield per wake-up, which puts
// the event behind every other runnable goroutine).
func TestCoalesceWritesALoneEventAtOnce(t *testing.T) {
	b, sub := coalesceSubscription(t)
	publishProbe(t, b)
	yields := 0
	coalesce(sub, false, func() { yields++ })
	if yields != 0 {
		t.Errorf("a lone event waited for %d yields", yields)
	}
}

// TestCoalesceWaitsWhileABurstGrows: with more than one event queued, or
// events arriving less than burstGap apart, the stream yields while its
// queue grows and writes once it stops growing.
func TestCoalesceWaitsWhileABurstGrows(t *testing.T) {
	for _, c := range []struct {
		name   string
		queued int
		burst  bool
	}{{"two queued", 2, false}, {"one queued in a burst", 1, true}} {
		t.Run(c.name, func(t *testing.T) {
			b, sub := coalesceSubscription(t)
			for range c.queued {
				publishProbe(t, b)
			}
			yields := 0
			coalesce(sub, c.burst, func() {
				yields++
				if yields <= 3 { // events keep arriving during the first three yields
					publishProbe(t, b)
				}
			})
			if yields != 4 {
				t.Errorf("yields = %d, want 4 (three that grew the batch, one that did not)", yields)
			}
		})
	}
}

func coalesceSubscription(t testing.TB) (*broker.Memory, *broker.Subscription) {
	t.Helper()
	b := broker.NewMemory(broker.MemoryConfig{})
	t.Cleanup(func() { b.Close() })
	sub, err := b.Subscribe(context.Background(), broker.SubscribeOptions{UserID: "alice", Rooms: []room.Name{room.User("alice")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Close)
	return b, sub
}

func publishProbe(t testing.TB, b *broker.Memory) {
	t.Helper()
	ev := &realtimev1.Event{Payload: &realtimev1.Event_Probe{Probe: &systemv1.Probe{Target: "user:alice"}}}
	if _, err := b.Publish(context.Background(), broker.Target{Room: room.User("alice")}, ev); err != nil {
		t.Fatal(err)
	}
}

// TestInBurst: a stream treats its queue as a burst when it took several
// events last time, or when the queued event was published within burstGap
// of the last one it delivered; not when the queue is empty or the
// previous event came long before.
func TestInBurst(t *testing.T) {
	b, sub := coalesceSubscription(t)
	ls := &liveStream{sub: sub}
	if ls.inBurst() {
		t.Error("an empty queue is a burst")
	}
	publishProbe(t, b)
	first := sub.First().Time
	for _, c := range []struct {
		name      string
		lastEvent time.Time
		lastBatch int
		want      bool
	}{
		{"previous event long before", first.Add(-time.Hour), 1, false},
		{"previous event just before", first.Add(-burstGap / 10), 1, true},
		{"several taken last time", first.Add(-time.Hour), 3, true},
	} {
		ls.lastEvent, ls.lastBatch = c.lastEvent, c.lastBatch
		if got := ls.inBurst(); got != c.want {
			t.Errorf("%s: inBurst = %v, want %v", c.name, got, c.want)
		}
	}
}

// BenchmarkCoalesceLoneEvent is the coalescing decision for one queued
// event at light load: always-yield is the rule until this change (one
// runtime.Gosched per wake-up, returning at once when nothing else is
// runnable), lone-event-rule is [coalesce] now, which writes a lone event
// without yielding.
func BenchmarkCoalesceLoneEvent(b *testing.B) {
	br, sub := coalesceSubscription(b)
	publishProbe(b, br)
	b.Run("always-yield", func(b *testing.B) {
		for b.Loop() {
			coalesce(sub, true, runtime.Gosched)
		}
	})
	b.Run("lone-event-rule", func(b *testing.B) {
		for b.Loop() {
			coalesce(sub, false, runtime.Gosched)
		}
	})
}
