package broker

import (
	"context"
	"crypto/rand"
	"fmt"
	"runtime/debug"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	"github.com/honeydo/realtime/internal/room"
)

// MemoryConfig configures a [Memory] broker. The zero value is ready to use.
type MemoryConfig struct {
	// History bounds the events kept for resumes; see [HistoryLimits] for
	// the defaults.
	History HistoryLimits
	// Epoch names this log. Empty means a random one, so that cursors from
	// before a restart are recognized as belonging to lost history.
	Epoch string
	// Now returns the current time; nil means time.Now. Tests set it to move
	// history past its age limit.
	Now func() time.Time
}

// Memory is a single-process [Broker]. One mutex orders publishes, fans
// them out and guards history; resumes replay from per-room histories, so
// their cost follows what is replayed, not the size of history.
//
// History also expires on a timer, not only when somebody publishes or
// subscribes: an idle server gives its history back within MaxAge plus
// [Memory.expirySlack]. The timer is armed only while history is not empty,
// so an idle, empty broker costs nothing; Close stops it.
type Memory struct {
	limits HistoryLimits
	epoch  string
	now    func() time.Time

	mu      sync.Mutex
	closed  bool
	head    uint64     // offset of the newest event; 0 before the first
	evicted uint64     // offset of the newest event evicted from history
	log     messageLog // every retained event, oldest first
	bytes   int64      // retained size of log, as retainedSize counts it
	rooms   map[room.Name]*messageLog
	hub     hub
	ready   readySignal
	expiry  *time.Timer // runs expire; armed while log is not empty
	armed   bool
	expired int64 // bytes the timer evicted since history was last empty

	// waits and waited (ns) count the publishes that waited for a
	// subscription behind ([Memory.PublishWaits]).
	waits, waited atomic.Int64
}

var (
	_ Broker = (*Memory)(nil)
	_ Closer = (*Memory)(nil)
)

// NewMemory returns an in-memory broker.
func NewMemory(cfg MemoryConfig) *Memory {
	m := &Memory{
		limits: cfg.History.withDefaults(),
		epoch:  cfg.Epoch,
		now:    cfg.Now,
		rooms:  make(map[room.Name]*messageLog),
		hub:    newHub(),
	}
	if m.epoch == "" {
		m.epoch = newEpoch()
	}
	if m.now == nil {
		m.now = time.Now
	}
	return m
}

// Epoch returns the name of this broker's log.
func (m *Memory) Epoch() string { return m.epoch }

// Publish implements [Broker].
func (m *Memory) Publish(ctx context.Context, target Target, ev *realtimev1.Event) (*Message, error) {
	if err := validateForPublish(target, ev); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := m.now()

	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, ErrClosed
	}
	pos := Position{Epoch: m.epoch, Offset: m.head + 1}
	ev.Time = timestamppb.New(now)
	msg, err := stamp(pos, target, ev, now)
	if err != nil {
		m.mu.Unlock()
		return nil, err
	}
	m.head = pos.Offset
	m.log.push(msg)
	msg.onJSON = m.chargeJSON
	m.bytes += retainedSize(msg)
	rl := m.rooms[target.Room]
	if rl == nil {
		rl = &messageLog{}
		m.rooms[target.Room] = rl
	}
	rl.push(msg)
	m.evictLocked(now)
	m.armLocked(now)
	d := m.hub.deliver(msg)
	// Leave the rooms now, under the lock: a subscription that missed this
	// event must not receive a later one, or its cursor would skip a gap.
	for _, s := range d.slow {
		m.hub.remove(s)
	}
	m.mu.Unlock()
	d.finish()
	if waited := pace(ctx, d.laggard); waited > 0 {
		m.waits.Add(1)
		m.waited.Add(int64(waited))
	}
	return msg, nil
}

// Subscribe implements [Broker].
func (m *Memory) Subscribe(ctx context.Context, opts SubscribeOptions) (*Subscription, error) {
	if len(opts.Rooms) == 0 {
		return nil, fmt.Errorf("broker: subscribe needs at least one room")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := newSubscription(opts)
	s.unsubscribe = m.remove

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	m.evictLocked(m.now())
	s.Start = Position{Epoch: m.epoch, Offset: m.head}
	var replay []*Message
	if since := opts.Since; since != nil {
		switch {
		case since.Epoch != m.epoch:
			s.Resume = ResumeEpochChanged
		case since.Offset > m.head:
			return nil, fmt.Errorf("%w: it points past the end of this server's log", ErrInvalidCursor)
		case since.Offset < m.evicted:
			s.Resume = ResumeExpired
		default:
			s.Resume = ResumeOK
			s.Start = *since
			replay = m.replayLocked(s, since.Offset)
		}
	}
	// Joining the rooms and queueing the replay under the same lock that
	// publishes take is what makes the seam exact: every event is either in
	// the replay (published before) or delivered live (after), never both.
	m.hub.add(s)
	s.preload(replay)
	return s, nil
}

// replayLocked merges the subscription's room histories after offset, in
// log order, leaving out events that except the subscriber. It walks
// s.Rooms, which has no repeats: a room listed twice would replay twice.
func (m *Memory) replayLocked(s *Subscription, after uint64) []*Message {
	var parts [][]*Message
	total := 0
	for _, r := range s.Rooms {
		rl := m.rooms[r]
		if rl == nil {
			continue
		}
		p := rl.after(after)
		if len(p) > 0 {
			parts = append(parts, p)
			total += len(p)
		}
	}
	out := make([]*Message, 0, total)
	for {
		best := -1
		for i, p := range parts {
			if len(p) > 0 && (best < 0 || p[0].Position.Offset < parts[best][0].Position.Offset) {
				best = i
			}
		}
		if best < 0 {
			return out
		}
		msg := parts[best][0]
		parts[best] = parts[best][1:]
		if !msg.Target.excludes(s.UserID) {
			out = append(out, msg)
		}
	}
}

func (m *Memory) remove(s *Subscription) {
	m.mu.Lock()
	m.hub.remove(s)
	m.mu.Unlock()
}

// evictLocked drops the oldest events until history is within its limits.
func (m *Memory) evictLocked(now time.Time) {
	for m.log.len() > 0 {
		oldest := m.log.front()
		if m.log.len() <= m.limits.MaxEvents && m.bytes <= m.limits.MaxBytes && now.Sub(oldest.Time) <= m.limits.MaxAge {
			return
		}
		m.log.pop()
		m.bytes -= retainedSize(oldest) + oldest.charged
		oldest.charged = 0
		m.evicted = oldest.Position.Offset
		if rl := m.rooms[oldest.Target.Room]; rl != nil {
			rl.pop()
			if rl.len() == 0 {
				delete(m.rooms, oldest.Target.Room)
			}
		}
	}
}

// Ready implements [Broker]: a memory broker is ready until it is closed.
func (m *Memory) Ready() (<-chan struct{}, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ch := m.ready.wait()
	if m.closed {
		return ch, ErrClosed
	}
	return ch, nil
}

// historyEntryOverhead is what one retained event costs besides its
// encoding and its decoded form: the Message, the Event's structs (event,
// payload wrapper, timestamp) and its slots in the history logs.
// TestMemoryHistoryBytesBoundHeap measures it (about 450 bytes on amd64).
const historyEntryOverhead = 512

// retainedSize is what history counts against MaxBytes for msg when it is
// published: the heap it holds. History keeps both the wire encoding (for
// binary streams) and the decoded Event (handed back by Publish), and the
// decoded form takes about as many bytes as the encoding. The JSON encoding,
// made only when a JSON stream first receives the event, is added then
// (chargeJSON).
func retainedSize(msg *Message) int64 {
	return 2*int64(len(msg.Wire)) + historyEntryOverhead
}

// chargeJSON counts a history message's JSON encoding once it is made, and
// evicts if that takes history over its byte limit. A message already
// evicted (or a closed broker's) is not counted.
func (m *Memory) chargeJSON(msg *Message, n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed || m.log.len() == 0 || msg.Position.Offset <= m.evicted {
		return
	}
	msg.charged = int64(n)
	m.bytes += msg.charged
	m.evictLocked(m.now())
}

// expirySlack is how late, at most, the expiry timer runs after the oldest
// event's age limit: a tenth of MaxAge, at most one second. Batching
// expiries this way keeps a steady stream of events from waking the timer
// once per event.
func (m *Memory) expirySlack() time.Duration {
	return min(m.limits.MaxAge/10, time.Second)
}

// armLocked starts the expiry timer for the oldest event, unless it is
// already running or history is empty.
func (m *Memory) armLocked(now time.Time) {
	if m.armed || m.closed || m.log.len() == 0 {
		return
	}
	d := m.log.front().Time.Add(m.limits.MaxAge).Sub(now) + m.expirySlack()
	d = max(d, m.expirySlack())
	m.armed = true
	if m.expiry == nil {
		m.expiry = time.AfterFunc(d, m.expire)
	} else {
		m.expiry.Reset(d)
	}
}

// idleReleaseBytes is how much history the timer must have expired, down
// to none, for it to hand the memory back to the operating system.
const idleReleaseBytes = 8 << 20

// expire is the expiry timer's function: it evicts what has aged out and
// re-arms for the next oldest event.
//
// When that empties a large history, nothing was published for a whole
// MaxAge: the server is idle, and no garbage collection may run for up to
// two minutes (the runtime's forced period), the scavenger returning the
// pages to the OS only after that. So the timer frees them at once. It
// happens once per idle spell, never under steady traffic, where history
// never empties.
func (m *Memory) expire() {
	m.mu.Lock()
	m.armed = false
	if m.closed {
		m.mu.Unlock()
		return
	}
	now := m.now()
	before := m.bytes
	m.evictLocked(now)
	m.armLocked(now)
	m.expired += before - m.bytes
	release := false
	if m.log.len() == 0 {
		release = m.expired >= idleReleaseBytes
		m.expired = 0
	}
	m.mu.Unlock()
	if release {
		debug.FreeOSMemory()
	}
}

// Close implements [Closer]: it ends every subscription with ErrClosed,
// stops the expiry timer, lets go of history and makes later calls fail.
func (m *Memory) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	if m.expiry != nil {
		m.expiry.Stop()
	}
	// A stopped timer may stay in the runtime's timer heap for a while,
	// and with it this broker: without its history it holds next to nothing.
	m.log, m.rooms, m.bytes = messageLog{}, nil, 0
	subs := m.hub.all()
	m.ready.notify()
	m.mu.Unlock()
	for _, s := range subs {
		s.end(ErrClosed)
	}
	return nil
}

// Stats is a snapshot of a broker's size, for metrics and tests.
type Stats struct {
	Subscriptions int
	HistoryEvents int
	// HistoryBytes is the size counted against HistoryLimits.MaxBytes.
	HistoryBytes    int64
	Head            Position
	OldestResumable Position
}

// PublishWaits returns how many publishes have waited for a subscription
// that was behind (see the package doc), and how long they waited in all.
func (m *Memory) PublishWaits() (n int64, total time.Duration) {
	return m.waits.Load(), time.Duration(m.waited.Load())
}

// Stats returns a snapshot of m.
func (m *Memory) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return Stats{
		Subscriptions:   m.hub.subs,
		HistoryEvents:   m.log.len(),
		HistoryBytes:    m.bytes,
		Head:            Position{Epoch: m.epoch, Offset: m.head},
		OldestResumable: Position{Epoch: m.epoch, Offset: m.evicted},
	}
}

// newEpoch returns 10 random base32 characters (50 bits): enough that two
// incarnations of a log never share one.
func newEpoch() string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz234567"
	var b [10]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = alphabet[b[i]&31]
	}
	return string(b[:])
}

// messageLog is a FIFO of messages in offset order.
type messageLog struct {
	msgs []*Message
	head int
}

func (l *messageLog) len() int        { return len(l.msgs) - l.head }
func (l *messageLog) front() *Message { return l.msgs[l.head] }
func (l *messageLog) push(m *Message) { l.msgs = append(l.msgs, m) }

func (l *messageLog) pop() {
	l.msgs[l.head] = nil
	l.head++
	if l.head == len(l.msgs) {
		// Empty: let the array go, so an idle history holds nothing.
		l.msgs, l.head = nil, 0
		return
	}
	// Compact once the dead prefix dominates, so memory follows what is
	// retained rather than what was ever published.
	if l.head >= 64 && l.head*2 >= len(l.msgs) {
		n := copy(l.msgs, l.msgs[l.head:])
		clear(l.msgs[n:])
		l.msgs = l.msgs[:n]
		l.head = 0
	}
}

// after returns the retained messages with offsets greater than offset.
func (l *messageLog) after(offset uint64) []*Message {
	live := l.msgs[l.head:]
	i := sort.Search(len(live), func(i int) bool { return live[i].Position.Offset > offset })
	return live[i:]
}
