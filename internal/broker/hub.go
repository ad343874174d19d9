package broker

// hub is the in-process fan-out: it indexes subscriptions by room. It is not
// safe for concurrent use; its owner serializes calls (Memory under its
// mutex), which is also what keeps each room's deliveries in publish order.
type hub struct {
	rooms map[Room]map[*Subscription]struct{}
	subs  int
}

func newHub() hub {
	return hub{rooms: make(map[Room]map[*Subscription]struct{})}
}

func (h *hub) add(s *Subscription) {
	for _, r := range s.Rooms {
		set := h.rooms[r]
		if set == nil {
			set = make(map[*Subscription]struct{})
			h.rooms[r] = set
		}
		set[s] = struct{}{}
	}
	h.subs++
}

func (h *hub) remove(s *Subscription) {
	removed := false
	for _, r := range s.Rooms {
		set := h.rooms[r]
		if _, ok := set[s]; !ok {
			continue
		}
		removed = true
		delete(set, s)
		if len(set) == 0 {
			delete(h.rooms, r)
		}
	}
	if removed {
		h.subs--
	}
}

// deliver queues m on every subscription of its room and appends the ones
// whose queue overflowed to slow. The caller ends those after releasing its
// lock, since ending a subscription calls back into the owner.
func (h *hub) deliver(m *Message, slow []*Subscription) []*Subscription {
	for s := range h.rooms[m.Target.Room] {
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
	for _, set := range h.rooms {
		for s := range set {
			if _, ok := seen[s]; !ok {
				seen[s] = struct{}{}
				out = append(out, s)
			}
		}
	}
	return out
}
