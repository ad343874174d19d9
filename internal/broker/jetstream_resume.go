package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/honeydo/realtime/internal/room"
)

// Subscribing, and resuming from a cursor: join live first, buffer, replay
// the missed events from the stream, and join the two at the seam.

// pendingResume is a resuming subscription between joining live and
// receiving its replay: live events of its rooms are buffered here, then
// queued after the replay.
type pendingResume struct {
	sub   *Subscription
	buf   []*Message
	limit int
	err   error
}

func (p *pendingResume) add(m *Message) {
	if p.err != nil || m.Target.excludes(p.sub.UserID) {
		return
	}
	if len(p.buf) >= p.limit {
		p.err = ErrSlowConsumer
		p.buf = nil
		return
	}
	p.buf = append(p.buf, m)
}

// Subscribe implements [Broker].
//
// Resume method (join live first, buffer, replay, de-duplicate by position):
//  1. Wait until this node's consumer has delivered the cursor's sequence
//     (it may trail another node's publish by a moment). Then, under the
//     lock that dispatch holds, note head — the last sequence handed to the
//     hub — and register a pending resume that buffers live events of the
//     subscriber's rooms from head+1 on.
//  2. Read (cursor, head] from the stream with a short-lived consumer whose
//     filter subjects are exactly the subscriber's rooms, starting at
//     cursor+1: JetStream's per-subject index finds those events, so the
//     cost follows what is replayed, not the stream's size or other rooms.
//     Reading stops at head, by sequence.
//  3. Check that the stream's first sequence is still <= cursor+1 (events
//     leave only from the front): otherwise events were lost and the resume
//     reports [ResumeExpired].
//  4. Under the lock again: queue replay + buffer and add the subscription
//     to the hub. Replay holds sequences <= head, the buffer > head, live
//     delivery whatever dispatch hands over next: each event exactly once,
//     in stream order.
func (j *JetStream) Subscribe(ctx context.Context, opts SubscribeOptions) (*Subscription, error) {
	if len(opts.Rooms) == 0 {
		return nil, fmt.Errorf("broker: subscribe needs at least one room")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !j.nc.IsConnected() {
		return nil, fmt.Errorf("%w: this node is not connected to NATS; try another node", ErrUnavailable)
	}
	s := newSubscription(opts)
	s.unsubscribe = j.remove
	since := opts.Since

	head, joined, err := j.joinLive(s, since)
	if err != nil {
		return nil, err
	}
	if joined {
		return s, nil
	}
	// Step 1: since is a position of this epoch other than this node's head.
	if since.Offset > head {
		if err := j.checkAhead(ctx, *since); err != nil {
			return nil, err
		}
	}
	p := &pendingResume{sub: s, limit: s.limit}
	upTo, err := j.addPending(p, opts.Rooms, since.Epoch)
	if err != nil {
		return nil, err
	}
	// Steps 2 and 3, unlocked: live events of the rooms meanwhile go to p.
	replay, expired, err := j.replay(ctx, opts, since.Offset, upTo)
	// Step 4.
	if err := j.finishResume(p, opts.Rooms, *since, upTo, replay, expired, err); err != nil {
		return nil, err
	}
	return s, nil
}

// joinLive adds s to the hub at once when there is nothing to replay: no
// cursor, a cursor of another epoch (an old incarnation of the stream), or a
// cursor at this node's head. joined reports that it did; otherwise head is
// the last sequence this node delivered.
func (j *JetStream) joinLive(s *Subscription, since *Position) (head uint64, joined bool, err error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return 0, false, ErrClosed
	}
	epoch, head := j.epoch, j.head
	if since != nil && since.Epoch == epoch && since.Offset != head {
		return head, false, nil
	}
	s.Start = Position{Epoch: epoch, Offset: head}
	switch {
	case since == nil:
	case since.Epoch != epoch:
		s.Resume = ResumeEpochChanged
	default: // nothing to replay: the cursor is this node's head
		s.Resume = ResumeOK
	}
	j.hub.add(s)
	return head, true, nil
}

// checkAhead handles a cursor past this node's head: it is valid only if
// the stream holds its sequence, and then this node's consumer (which may
// trail another node's publish by a moment) must deliver that far first.
func (j *JetStream) checkAhead(ctx context.Context, since Position) error {
	info, err := j.streamInfo(ctx)
	if err != nil {
		return err
	}
	if streamEpoch(info.Config.Name, info.Created) != since.Epoch {
		return fmt.Errorf("%w: the stream is changing identity; retry", ErrUnavailable)
	}
	if since.Offset > info.State.LastSeq {
		return fmt.Errorf("%w: it points past the end of the stream", ErrInvalidCursor)
	}
	return j.waitHead(ctx, since.Offset)
}

// addPending registers p for rooms, so that dispatch buffers their live
// events in it from now on, and returns upTo, the last sequence handed to
// the hub: the replay covers up to it, p everything after.
func (j *JetStream) addPending(p *pendingResume, rooms []room.Name, epoch string) (upTo uint64, err error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return 0, ErrClosed
	}
	if j.epoch != epoch {
		return 0, fmt.Errorf("%w: the stream changed identity during the resume; retry", ErrUnavailable)
	}
	for _, r := range rooms {
		set := j.pending[r]
		if set == nil {
			set = make(map[*pendingResume]struct{})
			j.pending[r] = set
		}
		set[p] = struct{}{}
	}
	return j.head, nil
}

// finishResume unregisters p and, unless the broker closed, the replay
// failed (replayErr) or p overflowed, queues the replay and p's buffer on
// the subscription and adds it to the hub, all under one lock so that no
// live event falls between them.
func (j *JetStream) finishResume(p *pendingResume, rooms []room.Name, since Position, upTo uint64, replay []*Message, expired bool, replayErr error) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, r := range rooms {
		if set := j.pending[r]; set != nil {
			delete(set, p)
			if len(set) == 0 {
				delete(j.pending, r)
			}
		}
	}
	switch {
	case j.closed:
		return ErrClosed
	case replayErr != nil:
		return replayErr
	case p.err != nil:
		return p.err
	}
	s := p.sub
	if expired {
		s.Resume = ResumeExpired
		s.Start = Position{Epoch: since.Epoch, Offset: upTo}
		replay = nil
	} else {
		s.Resume = ResumeOK
		s.Start = since
	}
	s.preload(append(replay, p.buf...))
	j.hub.add(s)
	return nil
}

// waitHead waits until this node's consumer has delivered seq.
func (j *JetStream) waitHead(ctx context.Context, seq uint64) error {
	ch := j.addWaiter(seq)
	if ch == nil {
		return nil
	}
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	var err error
	select {
	case <-ch:
		if j.isClosed() {
			return ErrClosed
		}
		return nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-t.C:
		err = fmt.Errorf("%w: this node is behind the stream; try again", ErrUnavailable)
	}
	j.removeWaiter(ch)
	return err
}

// addWaiter returns a channel that is closed once head reaches seq (or the
// broker closes), or nil if it already has.
func (j *JetStream) addWaiter(seq uint64) chan struct{} {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.head >= seq {
		return nil
	}
	ch := make(chan struct{})
	j.waiters[ch] = seq
	return ch
}

func (j *JetStream) removeWaiter(ch chan struct{}) {
	j.mu.Lock()
	defer j.mu.Unlock()
	delete(j.waiters, ch)
}

func (j *JetStream) isClosed() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.closed
}

// replay reads the events of opts.Rooms with sequences in (after, upTo]
// from the stream, leaving out those that except the subscriber. expired
// reports that some of them had already left the stream.
func (j *JetStream) replay(ctx context.Context, opts SubscribeOptions, after, upTo uint64) (msgs []*Message, expired bool, err error) {
	ctx, cancel := j.opCtx(ctx, 10*time.Second)
	defer cancel()
	filters := make([]string, 0, len(opts.Rooms))
	for _, r := range opts.Rooms {
		subj := roomSubject(j.prefix, r)
		if !slices.Contains(filters, subj) {
			filters = append(filters, subj)
		}
	}
	if upTo <= after {
		return nil, false, nil
	}
	msgs, err = j.fetchRange(ctx, filters, opts.UserID, after+1, upTo)
	if err != nil {
		if errors.Is(context.Cause(ctx), context.Canceled) {
			return nil, false, context.Canceled
		}
		return nil, false, fmt.Errorf("%w: reading history: %v", ErrUnavailable, err)
	}
	// Events leave a stream from the front only: if the first sequence is
	// still at most after+1 now, everything we read was complete.
	info, err := j.streamInfo(ctx)
	if err != nil {
		return nil, false, err
	}
	if info.State.FirstSeq > after+1 {
		return nil, true, nil
	}
	return msgs, false, nil
}

func (j *JetStream) fetchRange(ctx context.Context, filters []string, userID string, from, upTo uint64) ([]*Message, error) {
	cfg := jetstream.ConsumerConfig{
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       from,
		AckPolicy:         jetstream.AckNonePolicy,
		MemoryStorage:     true,
		Replicas:          1,
		InactiveThreshold: 30 * time.Second,
	}
	if len(filters) == 1 {
		cfg.FilterSubject = filters[0]
	} else {
		cfg.FilterSubjects = filters
	}
	cons, err := j.js.CreateConsumer(ctx, j.cfg.Stream, cfg)
	if err != nil {
		return nil, err
	}
	name := cons.CachedInfo().Name
	defer func() {
		// Deleting is housekeeping (the server would drop it when idle):
		// don't make the subscriber wait for it. The WaitGroup may only
		// grow while Close is not waiting on it; once closed, the consumer
		// is left to its InactiveThreshold.
		j.mu.Lock()
		closed := j.closed
		if !closed {
			j.bg.Add(1)
		}
		j.mu.Unlock()
		if closed {
			return
		}
		go func() {
			defer j.bg.Done()
			dctx, cancel := context.WithTimeout(j.ctx, 5*time.Second)
			defer cancel()
			_ = j.js.DeleteConsumer(dctx, j.cfg.Stream, name)
		}()
	}()
	pending := cons.CachedInfo().NumPending
	var out []*Message
	epoch := j.Epoch()
	for pending > 0 {
		batch, err := cons.Fetch(int(min(pending, 256)), jetstream.FetchMaxWait(3*time.Second))
		if err != nil {
			return nil, err
		}
		got := 0
		for msg := range batch.Messages() {
			got++
			md, err := msg.Metadata()
			if err != nil {
				return nil, err
			}
			seq := md.Sequence.Stream
			if seq > upTo {
				return out, nil
			}
			pending = md.NumPending
			m, err := j.decode(epoch, seq, msg.Subject(), msg.Headers(), msg.Data())
			if err != nil {
				j.log.Warn("replay: skipping a message this broker cannot read", "seq", seq, "err", err)
			} else if !m.Target.excludes(userID) {
				out = append(out, m)
			}
			if seq == upTo {
				return out, nil
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return nil, err
		}
		if got == 0 {
			return nil, errors.New("history read stalled")
		}
	}
	return out, nil
}
