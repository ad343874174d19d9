package broker

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	"github.com/honeydo/realtime/internal/room"
)

// Target is where a published event goes.
type Target struct {
	// Room is the audience (package room names them).
	Room room.Name
	// ExceptUserID, when set, leaves that user's streams out (Socket.io's
	// toOthers).
	ExceptUserID string
}

// excludes reports whether t leaves userID's streams out. Live delivery and
// every replay path ask this one question, so that toOthers means the same
// wherever an event comes from.
func (t Target) excludes(userID string) bool {
	return t.ExceptUserID != "" && t.ExceptUserID == userID
}

// Message is a published event as subscribers receive it. Messages are
// shared between subscribers and history: treat every field as read-only.
type Message struct {
	// Position is the event's place in the broker's log.
	Position Position
	// Target is where the event was published.
	Target Target
	// Event is the event with id, cursor and time assigned.
	Event *realtimev1.Event
	// Wire is Event in protobuf binary encoding, made once per publish.
	Wire []byte
	// Time is when the broker accepted the event (Event.Time as time.Time).
	Time time.Time

	json atomic.Pointer[[]byte] // see JSON
	// onJSON, when set, is told the size of the JSON encoding once it is
	// made, so that a history holding the message can count it.
	onJSON func(*Message, int)
	// charged is what a history counted for the JSON encoding; only that
	// history's lock guards it.
	charged int64
}

// JSON returns Event in protojson encoding, as Connect's JSON codec writes
// it. It is made on first use and then shared, as Wire is, so streams that
// speak JSON do not each encode the event again. The result is read-only.
func (m *Message) JSON() ([]byte, error) {
	if b := m.json.Load(); b != nil {
		return *b, nil
	}
	b, err := protojson.Marshal(m.Event)
	if err != nil {
		return nil, err
	}
	// Streams racing on the first use encode alike; keep one copy.
	if m.json.CompareAndSwap(nil, &b) && m.onJSON != nil {
		m.onJSON(m, len(b))
	}
	return *m.json.Load(), nil
}

// ResumeStatus says what became of a subscription's resume request.
type ResumeStatus int

const (
	// ResumeNone: the subscription asked for live events only.
	ResumeNone ResumeStatus = iota
	// ResumeOK: every event after the requested position follows, in order,
	// with no gap and no duplicate.
	ResumeOK
	// ResumeExpired: events after the requested position have left history;
	// the subscription starts live and the client must refetch its state.
	ResumeExpired
	// ResumeEpochChanged: the position belongs to a history that no longer
	// exists (e.g. an in-memory broker restarted); live only, refetch state.
	ResumeEpochChanged
)

// String returns a short name for logs and metric labels.
func (s ResumeStatus) String() string {
	switch s {
	case ResumeNone:
		return "none"
	case ResumeOK:
		return "resumed"
	case ResumeExpired:
		return "expired"
	case ResumeEpochChanged:
		return "epoch_changed"
	}
	return "unknown"
}

// SubscribeOptions describes a new subscription.
type SubscribeOptions struct {
	// UserID is the subscriber; events whose target excepts this user are
	// not delivered to it.
	UserID string
	// Rooms are the rooms to join. At least one is required.
	Rooms []room.Name
	// Since, when non-nil, asks for every event after that position (in the
	// subscription's rooms) before live events. Nil means live only.
	Since *Position
	// QueueSize bounds the live events waiting for the subscriber; when a
	// publish would exceed it, the subscription ends with [ErrSlowConsumer].
	// Past a quarter of it, [Memory] publishers wait for the subscriber (see
	// the package doc). Replayed history does not count against it. Zero means
	// 1024.
	QueueSize int
}

// DefaultQueueSize is the queue bound used when SubscribeOptions.QueueSize
// is zero.
const DefaultQueueSize = 1024

// Broker orders events and delivers them to subscriptions.
//
// Guarantees: events published to one room are delivered to each of its
// subscriptions in publish order; a subscription that resumes within the
// history window receives every event it missed exactly once, then live
// events with no gap and no duplicate at the seam.
type Broker interface {
	// Publish assigns ev a position, a cursor, a time and (if empty) an id,
	// appends it to history and delivers it to the target's subscriptions.
	// It returns once the event is durable in the backend's sense (in memory
	// for Memory). It never blocks on a subscriber; Memory waits up to 2 ms
	// for one far behind (see the package doc and [WithoutWaiting]).
	Publish(ctx context.Context, target Target, ev *realtimev1.Event) (*Message, error)
	// Subscribe joins the rooms in opts and, if opts.Since is set, queues the
	// history after it first. The caller must Close the subscription.
	Subscribe(ctx context.Context, opts SubscribeOptions) (*Subscription, error)
	// Ready reports whether the broker can serve subscriptions now: nil, or
	// an error wrapping [ErrUnavailable] (the backend cannot be reached or
	// cannot deliver; new subscriptions and publishes are likely to fail
	// with it too) or [ErrClosed]. changed is closed the next time the
	// answer may change, so that a health watcher need not poll; take it
	// before acting on err and no change is missed.
	Ready() (changed <-chan struct{}, err error)
}

// Closer is implemented by brokers that hold resources. Close ends every
// subscription with [ErrClosed].
type Closer interface {
	Close() error
}

var (
	// ErrSlowConsumer ends a subscription whose queue overflowed.
	ErrSlowConsumer = errors.New("broker: slow consumer: subscriber queue overflowed")
	// ErrClosed is returned by a broker that was closed, and ends its
	// subscriptions.
	ErrClosed = errors.New("broker: closed")
	// ErrInvalidCursor is returned for a cursor that does not parse, or that
	// points past the end of the log.
	ErrInvalidCursor = errors.New("broker: invalid cursor")
	// ErrInvalidEvent is returned by Publish for an event without payload or
	// with fields only the broker may set.
	ErrInvalidEvent = errors.New("broker: invalid event")
	// ErrUnavailable is returned when the backend cannot be reached.
	ErrUnavailable = errors.New("broker: backend unavailable")
)

// HistoryLimits bound the history a broker keeps for resumes. Whichever limit
// is reached first evicts the oldest events.
type HistoryLimits struct {
	// MaxAge is how long an event stays resumable. Zero means 2 minutes.
	MaxAge time.Duration
	// MaxEvents caps the number of events kept. Zero means 100,000.
	MaxEvents int
	// MaxBytes caps the size of the events kept. Zero means 64 MiB. The
	// memory backend counts the heap its history holds: twice each event's
	// encoded size (it keeps the encoding and the decoded event) plus 512
	// bytes per event. JetStream counts its stored size (subject, headers
	// and encoded event), on the NATS servers, not in this process.
	MaxBytes int64
}

func (l HistoryLimits) withDefaults() HistoryLimits {
	if l.MaxAge <= 0 {
		l.MaxAge = 2 * time.Minute
	}
	if l.MaxEvents <= 0 {
		l.MaxEvents = 100_000
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = 64 << 20
	}
	return l
}

// readySignal hands out the channel that [Broker.Ready] returns. Its owner
// serializes calls (under the broker's mutex).
type readySignal struct {
	ch chan struct{}
}

// wait returns the channel that the next notify closes.
func (r *readySignal) wait() <-chan struct{} {
	if r.ch == nil {
		r.ch = make(chan struct{})
	}
	return r.ch
}

// notify wakes everyone waiting on the current channel.
func (r *readySignal) notify() {
	if r.ch != nil {
		close(r.ch)
		r.ch = nil
	}
}
