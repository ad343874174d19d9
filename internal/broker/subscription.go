package broker

import (
	"sync"
	"sync/atomic"

	"github.com/honeydo/realtime/internal/room"
)

// Subscription receives the events of the rooms it joined. Its owner waits
// on [Subscription.Ready] and takes everything queued with
// [Subscription.Next], so that a busy stream costs one write per batch, not
// one per event.
type Subscription struct {
	// UserID and Rooms are as subscribed; read-only.
	UserID string
	Rooms  []room.Name
	// Start is the position the subscription starts after: the resume
	// position when the resume succeeded, else the head of the log at
	// subscribe time. Clients keep its cursor until an event arrives.
	Start Position
	// Resume says what became of SubscribeOptions.Since.
	Resume ResumeStatus

	ready chan struct{} // capacity 1: "the queue is not empty" or "ended"
	done  chan struct{}
	// notify, once set by [Subscription.Notify], is called instead of
	// signalling ready.
	notify atomic.Pointer[func() bool]

	mu     sync.Mutex
	queue  []*Message
	limit  int // live queue bound; see push
	base   int // queue size plus the replay still queued when subscribed
	err    error
	closed bool
	// overflowed is set by the first push that found the queue full.
	overflowed bool
	// caughtUp, made for publishers that wait for the subscription while
	// it is behind ([pace]), is closed by the owner's next take.
	caughtUp chan struct{}

	// unsubscribe removes the subscription from its backend; set by the
	// backend, called once by end.
	unsubscribe func(*Subscription)
	// slots[i] is the subscription's index among the members of Rooms[i];
	// owned by the hub, under the backend's lock.
	slots []int
}

// setSlot records that the subscription now sits at index at of room r.
func (s *Subscription) setSlot(r room.Name, at int) {
	for i, joined := range s.Rooms {
		if joined == r {
			s.slots[i] = at
		}
	}
}

func newSubscription(opts SubscribeOptions) *Subscription {
	limit := opts.QueueSize
	if limit <= 0 {
		limit = DefaultQueueSize
	}
	return &Subscription{
		UserID: opts.UserID,
		Rooms:  uniqueRooms(opts.Rooms),
		ready:  make(chan struct{}, 1),
		done:   make(chan struct{}),
		limit:  limit,
		base:   limit,
	}
}

// Ready is signalled when messages are queued or the subscription ended.
// One signal may stand for many messages: call Next until it returns none.
func (s *Subscription) Ready() <-chan struct{} { return s.ready }

// Notify has f called, from then on, wherever Ready would be signalled:
// on the publisher's goroutine, under the broker's lock, so f must return
// at once (start or wake the owner, never write). f also stands for a
// signal Ready already holds, which Notify takes: it is called once at
// once, so that nothing signalled before is missed (a spurious call finds
// nothing queued). An owner that parks without a goroutine of its own
// (waiting on Ready would need one) uses it.
//
// f returns true when it has just started its owner from idle on a lone
// event: the publisher then yields the processor once the event is queued
// for every subscription (unless it started more than a few owners), so
// that on a busy processor the owners write this event before the
// publisher goes on to the next. Without the yield a publisher that sends
// a few events at once (a paced loop catching up, a handler emitting to
// two rooms) delays each event's write by the publishing of the rest.
func (s *Subscription) Notify(f func() (started bool)) {
	s.notify.Store(&f)
	select {
	case <-s.ready:
	default:
	}
	f()
}

// Done is closed when the subscription has ended; Err says why.
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Err returns why the subscription ended: [ErrSlowConsumer], [ErrClosed],
// or nil while it runs or after the owner closed it.
func (s *Subscription) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Len returns how many messages are queued. The owner uses it to let a
// batch grow while more messages are arriving.
func (s *Subscription) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

// Head returns how many messages are queued and the first of them (nil
// when none is), without taking it. The owner compares its publish time with
// the previous message's to tell a burst from a lone message.
func (s *Subscription) Head() (n int, first *Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) == 0 {
		return 0, nil
	}
	return len(s.queue), s.queue[0]
}

// Next returns every queued message, in delivery order. Pass the previous
// result back in, whole (not truncated), to reuse its memory: it becomes the
// next queue, and the subscription keeps no other reference to it.
func (s *Subscription) Next(buf []*Message) []*Message {
	// Only buf[:len(buf)] can hold pointers: a queue is filled by append
	// from empty, and each use clears what the previous one filled. Clearing
	// len rather than cap, and before locking, keeps a 1-event batch from
	// paying for the largest batch the stream ever had (it was 4% of the
	// server's CPU under W2), and keeps publishers out of the wait.
	clear(buf)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.caughtUp != nil {
		close(s.caughtUp)
		s.caughtUp = nil
	}
	if len(s.queue) == 0 {
		return buf[:0]
	}
	out := s.queue
	// Swap buffers rather than copy: the caller's old batch becomes the
	// next queue, so a steady stream allocates nothing.
	s.queue = buf[:0]
	s.limit = s.base
	return out
}

// Close ends the subscription and leaves its rooms. It is idempotent.
func (s *Subscription) Close() {
	s.end(nil)
}

// push queues m without blocking. It returns ok false when the queue is
// full, in which case the caller must end the subscription with
// ErrSlowConsumer; started says the owner was started from idle and the
// publisher should yield once it has delivered m ([Subscription.Notify]).
//
// behind is how many events past the mark of [behindAt] the owner's live
// backlog is (see [pace]); zero or less when it is not behind.
func (s *Subscription) push(m *Message) (ok, started bool, behind int) {
	if m.Target.excludes(s.UserID) {
		return true, false, 0
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return true, false, 0
	}
	// Once a push has failed, every later one must too, even if the owner
	// drained the queue meanwhile: a later event after a missed one would
	// move the owner's cursor past the gap.
	if s.overflowed || len(s.queue) >= s.limit {
		s.overflowed = true
		s.mu.Unlock()
		return false, false, 0
	}
	s.queue = append(s.queue, m)
	behind = s.behindByLocked()
	s.mu.Unlock()
	return true, s.signal(), behind
}

// behindAt is the share of a subscription's queue bound its live backlog
// may fill before publishers wait for it ([pace]): far enough from the
// bound that a publisher slowed at it rarely lets the queue reach it.
const behindAt = 4 // a quarter

// behindByLocked returns by how many events the live backlog (the queue
// less the replay that raised its bound) is over 1/[behindAt] of the
// bound; zero or less means it is not behind. A queue bound under
// behindAt events is too short to tell an owner behind from one that is
// busy: its publishers never wait.
func (s *Subscription) behindByLocked() int {
	mark := s.base / behindAt
	if mark == 0 || s.closed || s.overflowed {
		return 0
	}
	return len(s.queue) - (s.limit - s.base) - mark
}

// whenCaughtUp returns a channel that the owner's next take closes, or nil
// if the subscription is not behind.
func (s *Subscription) whenCaughtUp() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.behindByLocked() <= 0 {
		return nil
	}
	if s.caughtUp == nil {
		s.caughtUp = make(chan struct{})
	}
	return s.caughtUp
}

// preload queues replayed history ahead of live messages; replay does not
// count against the live queue bound until the owner has taken it.
func (s *Subscription) preload(ms []*Message) {
	s.mu.Lock()
	s.queue = append(s.queue, ms...)
	s.limit = s.base + len(ms)
	s.mu.Unlock()
	if len(ms) > 0 {
		s.signal()
	}
}

// signal wakes the owner; started is what its Notify function returned.
func (s *Subscription) signal() (started bool) {
	if f := s.notify.Load(); f != nil {
		return (*f)()
	}
	select {
	case s.ready <- struct{}{}:
	default:
	}
	return false
}

// end marks the subscription ended with err (nil for the owner's Close),
// detaches it from the backend and wakes the owner. Only the first call
// counts.
func (s *Subscription) end(err error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.err = err
	s.queue = nil
	unsub := s.unsubscribe
	s.mu.Unlock()
	if unsub != nil {
		unsub(s)
	}
	close(s.done)
	s.signal()
}

// uniqueRooms drops repeated rooms, so that a room listed twice does not
// deliver twice.
func uniqueRooms(rooms []room.Name) []room.Name {
	out := make([]room.Name, 0, len(rooms))
	for _, r := range rooms {
		dup := false
		for _, o := range out {
			dup = dup || o == r
		}
		if !dup {
			out = append(out, r)
		}
	}
	return out
}
