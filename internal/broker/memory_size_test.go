package broker

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	shoppingv1 "github.com/honeydo/realtime/gen/honeydo/shopping/v1"
	"github.com/honeydo/realtime/internal/room"
	"github.com/honeydo/realtime/internal/testkit/natstest"
	"github.com/honeydo/realtime/internal/testkit/poll"
)

// heapAfterGC is the live heap, with garbage collected first.
func heapAfterGC() int64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// historyShapes are events of the sizes history holds in practice, from a
// bare notification to a 20 KB one, and a module's typical event.
var historyShapes = []struct {
	name string
	ev   func(i int) *realtimev1.Event
}{
	{"note-20B", func(i int) *realtimev1.Event { return note(fmt.Sprintf("hello %014d", i)) }},
	{"note-200B", func(i int) *realtimev1.Event { return note(strings.Repeat("x", 190) + fmt.Sprint(i)) }},
	{"note-2KB", func(i int) *realtimev1.Event { return note(strings.Repeat("x", 2000) + fmt.Sprint(i)) }},
	{"note-20KB", func(i int) *realtimev1.Event { return note(strings.Repeat("x", 20000) + fmt.Sprint(i)) }},
	{"item-added", func(i int) *realtimev1.Event {
		return &realtimev1.Event{SenderUserId: "user_2abcdefghijklmnop", Payload: &realtimev1.Event_ItemAdded{ItemAdded: &shoppingv1.ItemAdded{Item: &shoppingv1.ShoppingItem{
			Id: fmt.Sprintf("item_%020d", i), ListId: "list_home", Name: "Oat milk", Quantity: 2, Unit: "l",
			AddedByUserId: "user_2abcdefghijklmnop", CreateTime: timestamppb.Now(),
		}}}}
	}},
}

// TestMemoryHistoryBytesBoundHeap: MaxBytes bounds the heap history holds,
// not just the encoded bytes. For each event shape it publishes three times
// MaxBytes worth of events and compares the live heap that history keeps
// with the limit, logging the ratio (docs/SECURITY.md quotes it). Not
// parallel: it reads the process's heap.
func TestMemoryHistoryBytesBoundHeap(t *testing.T) {
	const limit = 8 << 20
	// With json, every event is also sent to a JSON stream, which makes and
	// keeps its JSON encoding: history must count that too.
	for _, withJSON := range []bool{false, true} {
		for _, sh := range historyShapes {
			m := NewMemory(MemoryConfig{History: HistoryLimits{MaxEvents: 1 << 30, MaxBytes: limit, MaxAge: time.Hour}})
			before := heapAfterGC()
			var wire int64
			for i := 0; wire < 3*limit; i++ {
				msg, err := m.Publish(context.Background(), Target{Room: room.Household(fmt.Sprint("h", i%100))}, sh.ev(i))
				if err != nil {
					t.Fatal(err)
				}
				wire += 2*int64(len(msg.Wire)) + historyEntryOverhead
				if withJSON {
					if _, err := msg.JSON(); err != nil {
						t.Fatal(err)
					}
				}
			}
			name := sh.name
			if withJSON {
				name += "+json"
			}
			held := heapAfterGC() - before
			st := m.Stats()
			var encoded int64
			m.mu.Lock()
			for _, msg := range m.log.msgs[m.log.head:] {
				encoded += int64(len(msg.Wire))
			}
			m.mu.Unlock()
			t.Logf("%-10s %6d events: heap %5.1f MiB, counted %5.1f MiB (limit %d MiB), encoded %5.1f MiB; heap/limit %.2f, heap/encoded %.2f, heap per event %.0f B",
				name, st.HistoryEvents, mib(held), mib(st.HistoryBytes), limit>>20, mib(encoded),
				float64(held)/limit, float64(held)/float64(encoded), float64(held)/float64(st.HistoryEvents))
			if st.HistoryBytes > limit {
				t.Errorf("%s: counted %d bytes, over the %d limit", name, st.HistoryBytes, limit)
			}
			// Generous: allocation size classes and GC timing move the heap a
			// little; what must not come back is the old 2-8x.
			if held > limit*5/4 {
				t.Errorf("%s: history holds %.1f MiB of heap, more than its %d MiB limit allows", name, mib(held), limit>>20)
			}
			m.Close()
			runtime.KeepAlive(m)
		}
	}
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// TestMemoryHistoryExpiresWhenIdle: an idle broker gives its history back
// within MaxAge plus the expiry slack, with nobody publishing or
// subscribing to trigger it. The figures (how long after the last publish,
// heap before and after) are logged for docs/SECURITY.md.
func TestMemoryHistoryExpiresWhenIdle(t *testing.T) {
	const maxAge = time.Second
	// The broker's clock stands still while the test publishes, so that a
	// busy machine, slow to publish, cannot age the first events out before
	// the last are in; it moves a window on once they all are. The timer
	// itself runs on real time, as in production.
	clock := &fakeClock{now: time.Now()}
	m := NewMemory(MemoryConfig{History: HistoryLimits{MaxAge: maxAge}, Now: clock.Now})
	defer m.Close()
	base := heapAfterGC()
	for i := range 10_000 {
		if _, err := m.Publish(context.Background(), Target{Room: room.Household(fmt.Sprint("h", i%100))}, note(strings.Repeat("x", 500))); err != nil {
			t.Fatal(err)
		}
	}
	last := time.Now()
	st := m.Stats()
	held := heapAfterGC() - base
	if st.HistoryEvents != 10_000 {
		t.Fatalf("history has %d events right after publishing, want 10000", st.HistoryEvents)
	}
	clock.Advance(maxAge + time.Millisecond)
	since := Position{Epoch: m.Epoch(), Offset: 1}
	poll.Eventually(t, 10*maxAge, 10*time.Millisecond, func() error {
		if st := m.Stats(); st.HistoryEvents != 0 || st.HistoryBytes != 0 {
			return fmt.Errorf("idle history still holds %d events, %d bytes", st.HistoryEvents, st.HistoryBytes)
		}
		return nil
	})
	took := time.Since(last)
	// Nobody collects garbage in an idle process; the broker does, and
	// hands the pages back, so the heap shrinks without a GC of ours.
	var ms runtime.MemStats
	poll.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		runtime.ReadMemStats(&ms)
		if live := int64(ms.HeapAlloc) - base; live > held/4 {
			return fmt.Errorf("heap still holds %.1f MiB of history's %.1f MiB: not released", mib(live), mib(held))
		}
		return nil
	})
	t.Logf("heap after the idle release, before any GC of the test's: %.2f MiB; released to the OS: %.1f MiB", mib(int64(ms.HeapAlloc)-base), mib(int64(ms.HeapReleased)))
	after := heapAfterGC() - base
	t.Logf("%d events (%.1f MiB counted, %.1f MiB heap) expired %v after the last publish, at most max age %v + slack %v after the first; heap left: %.2f MiB",
		st.HistoryEvents, mib(st.HistoryBytes), mib(held), took.Round(time.Millisecond), maxAge, m.expirySlack(), mib(after))
	if after > held/10 {
		t.Errorf("after expiry history still holds %.1f MiB of its %.1f MiB", mib(after), mib(held))
	}
	// Expired, not lost: a resume into the gap says so.
	s := subscribe(t, m, "u", []room.Name{room.Household("h1")}, &since)
	if s.Resume != ResumeExpired {
		t.Fatalf("resume after expiry: %v, want expired", s.Resume)
	}
}

// TestMemoryExpiryStopsOnClose: Close stops the expiry timer and lets go of
// history.
func TestMemoryExpiryStopsOnClose(t *testing.T) {
	t.Parallel()
	m := NewMemory(MemoryConfig{History: HistoryLimits{MaxAge: time.Hour}})
	publish(t, m, Target{Room: room.Broadcast}, "x")
	m.Close()
	if m.expiry.Stop() {
		t.Error("the expiry timer was still armed after Close")
	}
	if st := m.Stats(); st.HistoryEvents != 0 || st.HistoryBytes != 0 {
		t.Errorf("closed broker still holds %d events, %d bytes", st.HistoryEvents, st.HistoryBytes)
	}
}

// TestJetStreamHistoryExpiresWhenIdle: with the JetStream backend, history
// lives in the NATS servers and their MaxAge expires it on its own timer;
// this process holds none of it. Checked here so docs/SECURITY.md can say so.
func TestJetStreamHistoryExpiresWhenIdle(t *testing.T) {
	t.Parallel()
	n := natstest.Start(t)
	j := newTestJetStream(t, n.URL(), JetStreamConfig{History: HistoryLimits{MaxAge: time.Second}})
	for i := range 100 {
		publish(t, j, Target{Room: room.Household("home")}, fmt.Sprint(i))
	}
	last := time.Now()
	stream := streamOf(t, n.URL(), j.cfg.Stream)
	poll.Eventually(t, 20*time.Second, 20*time.Millisecond, func() error {
		info, err := stream.Info(context.Background())
		if err != nil {
			return err
		}
		if info.State.Msgs != 0 {
			return fmt.Errorf("stream still holds %d messages, %d bytes", info.State.Msgs, info.State.Bytes)
		}
		return nil
	})
	t.Logf("JetStream expired 100 idle events %v after the last publish (MaxAge 1s)", time.Since(last).Round(time.Millisecond))
}
