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
// lock, since ending a subscription calls back into the owner.
func (h *hub) deliver(m *Message, slow []*Subscription) []*Subscription {
	for _, s := range h.rooms[m.Target.Room] {
		if !s.push(m) {
			slow = append(slow, s)
		}
	}
	return slow
}

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
