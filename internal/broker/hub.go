package broker

import (
	"context"
	"runtime"
	"time"

	"github.com/honeydo/realtime/internal/room"
)

// hub is the in-process fan-out: it indexes subscriptions by room. It is not
// safe for concurrent use; its owner serializes calls (Memory under its
// mutex), which is also what keeps each room's deliveries in publish order.
//
// A room's members are a slice, not a map: fan-out is the hot path and a
// slice walk is several times cheaper than map iteration. Each subscription
// remembers its index in every room it joined (Subscription.slots), so
// removal is a swap with the last member, O(rooms) rather than O(members).
type hub struct {
	rooms map[room.Name][]*Subscription
	subs  int
}

func newHub() hub {
	return hub{rooms: make(map[room.Name][]*Subscription)}
}

func (h *hub) add(s *Subscription) {
	s.slots = make([]int, len(s.Rooms))
	for i, r := range s.Rooms {
		members := h.rooms[r]
		s.slots[i] = len(members)
		h.rooms[r] = append(members, s)
	}
	h.subs++
}

func (h *hub) remove(s *Subscription) {
	if s.slots == nil {
		return
	}
	for i, r := range s.Rooms {
		members := h.rooms[r]
		// Rooms are unique (newSubscription), so s is at its slot.
		at, last := s.slots[i], len(members)-1
		moved := members[last]
		members[at] = moved
		members[last] = nil
		moved.setSlot(r, at)
		if last == 0 {
			delete(h.rooms, r)
		} else {
			h.rooms[r] = members[:last]
		}
	}
	s.slots = nil
	h.subs--
}

// delivery is what [hub.deliver] leaves its caller to do once it has
// released its lock ([delivery.finish]), and the subscription a publisher
// may wait for ([pace]).
type delivery struct {
	slow  []*Subscription
	yield bool
	// laggard is the subscription this event left furthest behind, if it
	// is more than a quarter of its queue bound behind.
	laggard *Subscription
}

// deliver queues m on every subscription of its room.
func (h *hub) deliver(m *Message) delivery {
	var d delivery
	started, furthest := 0, 0
	for _, s := range h.rooms[m.Target.Room] {
		ok, st, behind := s.push(m)
		if !ok {
			d.slow = append(d.slow, s)
		}
		if st {
			started++
		}
		if behind > furthest {
			d.laggard, furthest = s, behind
		}
	}
	d.yield = started > 0 && started <= maxYieldFanout
	return d
}

// finish ends the slow subscriptions (ending one calls back into its
// owner, hence outside the lock), then yields the processor if yield says
// so ([Subscription.Notify]).
func (d delivery) finish() {
	for _, s := range d.slow {
		s.end(ErrSlowConsumer)
	}
	if d.yield {
		runtime.Gosched()
	}
}

// pace holds a publisher back while s, which its event has left more than
// a quarter of its queue bound behind, catches up: until its owner next
// takes the queue, s ends, ctx is done, or paceWait has passed. Without it
// a publisher that outruns a stream's writes (a fast loop, or every stream
// of a connection that the client reads slower than it could) fills the
// queue to its bound within milliseconds, and the stream is cut as a slow
// consumer, though it was only briefly behind: its socket full for a
// moment, or its HTTP/2 connection's writes queued behind a hundred other
// streams'. Waiting gives the processor to the streams, or lets the client
// read. The wait is bounded, so a client that never reads still has its
// stream cut once the queue is full, and slows each publish to its rooms
// by at most paceWait until then.
//
// Only a publisher's own goroutine waits, and only one whose ctx allows
// it ([WithoutWaiting]). A node's JetStream dispatch does not: it
// delivers every room of the node, so its waiting for one household's
// laggard would delay every other household's events.
//
// It returns how long it waited: zero when s was not behind (any more).
func pace(ctx context.Context, s *Subscription) time.Duration {
	if s == nil || ctx.Value(noWaitingKey{}) != nil {
		return 0
	}
	caughtUp := s.whenCaughtUp()
	if caughtUp == nil {
		return 0
	}
	start := time.Now()
	t := time.NewTimer(paceWait)
	defer t.Stop()
	select {
	case <-caughtUp:
	case <-s.Done():
	case <-ctx.Done():
	case <-t.C:
	}
	return time.Since(start)
}

// paceWait bounds a publisher's wait for one stream behind.
const paceWait = 2 * time.Millisecond

type noWaitingKey struct{}

// WithoutWaiting returns ctx for a publish that must not wait for a
// subscription behind (see the package doc): one made while holding a lock
// that other publishers or requests need, such as a database transaction.
func WithoutWaiting(ctx context.Context) context.Context {
	return context.WithValue(ctx, noWaitingKey{}, true)
}

// maxYieldFanout is the most owners a publish may have started for its
// publisher to yield to them ([Subscription.Notify]). The yield lasts about
// one write per owner (8-15 us on loopback here); kept well under the gap
// that owners take for a burst (250 us), a publisher that is behind
// publishes its next event within that gap, and its owners batch instead
// of being yielded to event by event. A room of thousands (a broadcast)
// has its events written after the publisher goes on, as before.
const maxYieldFanout = 16

// all returns every subscription, for closing.
func (h *hub) all() []*Subscription {
	seen := make(map[*Subscription]struct{}, h.subs)
	out := make([]*Subscription, 0, h.subs)
	for _, members := range h.rooms {
		for _, s := range members {
			if _, ok := seen[s]; !ok {
				seen[s] = struct{}{}
				out = append(out, s)
			}
		}
	}
	return out
}
