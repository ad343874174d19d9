package broker

import "github.com/honeydo/realtime/internal/room"

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

// deliver queues m on every subscription of its room and appends the ones
// whose queue overflowed to slow. The caller ends those after releasing its
// lock, since ending a subscription calls back into the owner, and then
// yields the processor if yield says so ([Subscription.Notify]).
func (h *hub) deliver(m *Message, slow []*Subscription) (_ []*Subscription, yield bool) {
	started := 0
	for _, s := range h.rooms[m.Target.Room] {
		ok, st := s.push(m)
		if !ok {
			slow = append(slow, s)
		}
		if st {
			started++
		}
	}
	return slow, started > 0 && started <= maxYieldFanout
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
