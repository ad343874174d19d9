package broker

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
)

// The node consumer: one ordered consumer over the whole subject space that
// hands every stored event, in stream order, to the in-process hub and to
// the resumes being assembled (jetstream_resume.go).

// startConsumer (re)starts this node's ordered consumer after the last
// sequence it delivered. If the stream changed identity, or events it had
// not delivered yet left the stream, every live subscription ends first so
// that its client resumes and learns what it lost.
func (j *JetStream) startConsumer(info *jetstream.StreamInfo) error {
	epoch := streamEpoch(info.Config.Name, info.Created)
	first, last := info.State.FirstSeq, info.State.LastSeq

	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return ErrClosed
	}
	var ended []*Subscription
	switch {
	case j.epoch == "":
		j.epoch, j.head = epoch, last
	case epoch != j.epoch:
		j.log.Warn("stream was recreated: new epoch; ending live streams so clients resync", "old_epoch", j.epoch, "epoch", epoch)
		ended = j.detachAllLocked()
		j.epoch, j.head = epoch, last
	case last > j.head && first > j.head+1:
		j.log.Warn("events left the stream before this node delivered them; ending live streams so clients resume",
			"delivered", j.head, "first_seq", first, "last_seq", last)
		ended = j.detachAllLocked()
		j.head = first - 1
	case last < j.head:
		// The stream lost events it had acknowledged (e.g. an R1 memory
		// stream whose server restarted) without a new identity.
		j.log.Warn("stream is behind this node; ending live streams so clients resync", "delivered", j.head, "last_seq", last)
		ended = j.detachAllLocked()
		j.head = last
	}
	j.gen++
	gen, start := j.gen, j.head+1
	j.needRestart = false
	j.wakeWaitersLocked()
	j.mu.Unlock()
	for _, s := range ended {
		s.end(fmt.Errorf("%w: events were lost between NATS and this node; reconnect with your cursor", ErrUnavailable))
	}

	cons, err := j.js.OrderedConsumer(j.ctx, j.cfg.Stream, jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{j.prefix + ".>"},
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       start,
		InactiveThreshold: time.Minute,
	})
	if err != nil {
		return fmt.Errorf("%w: creating the node consumer: %v", ErrUnavailable, err)
	}
	cc, err := cons.Consume(func(msg jetstream.Msg) { j.dispatch(gen, epoch, msg) },
		// Short heartbeats: a consumer whose NATS server died is noticed
		// and recreated elsewhere within a few seconds.
		jetstream.PullExpiry(5*time.Second),
		jetstream.PullHeartbeat(time.Second),
		jetstream.ConsumeErrHandler(j.consumeError))
	if err != nil {
		return fmt.Errorf("%w: starting the node consumer: %v", ErrUnavailable, err)
	}
	j.mu.Lock()
	j.cc = cc
	j.ready.notify()
	j.mu.Unlock()
	j.log.Debug("node consumer started", "epoch", epoch, "start_seq", start)
	return nil
}

func (j *JetStream) stopConsumer() {
	j.mu.Lock()
	cc := j.cc
	j.cc = nil
	j.gen++ // whatever the old consumer still hands over is dropped
	j.ready.notify()
	j.mu.Unlock()
	if cc != nil {
		cc.Stop()
	}
}

func (j *JetStream) consumeError(_ jetstream.ConsumeContext, err error) {
	if j.ctx.Err() != nil {
		return
	}
	j.log.Debug("node consumer", "err", err)
	if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrStreamNotFound) ||
		errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrNoHeartbeat) {
		j.poke()
	}
}

// dispatch hands one event from the node consumer to the hub and to the
// resumes being assembled. It runs on the consumer's goroutine, one event
// at a time, in stream order.
func (j *JetStream) dispatch(gen uint64, epoch string, msg jetstream.Msg) {
	md, err := msg.Metadata()
	if err != nil {
		j.log.Warn("node consumer: message without metadata", "err", err)
		return
	}
	seq := md.Sequence.Stream
	m, derr := j.decode(epoch, seq, msg.Subject(), msg.Headers(), msg.Data())

	j.mu.Lock()
	if gen != j.gen || j.closed || seq <= j.head {
		// An old consumer's leftovers, or a redelivery after a reset.
		j.mu.Unlock()
		return
	}
	if seq != j.head+1 {
		// Never deliver out of order: drop this consumer and let the
		// supervisor restart one after head, ending live streams only if
		// the missing events really left the stream.
		j.gen++
		j.needRestart = true
		j.mu.Unlock()
		j.log.Warn("node consumer skipped sequences; restarting it", "delivered", j.head, "got", seq)
		j.poke()
		return
	}
	j.head = seq
	var d delivery
	if derr != nil {
		j.log.Warn("dropping a message this broker cannot read", "seq", seq, "subject", msg.Subject(), "err", derr)
	} else {
		d = j.hub.deliver(m)
		// A slow subscription must not get later events once it missed
		// one: leave the hub now, end it after unlocking.
		for _, s := range d.slow {
			j.hub.remove(s)
		}
		for p := range j.pending[m.Target.Room] {
			p.add(m)
		}
	}
	if len(j.waiters) > 0 {
		j.wakeWaitersLocked()
	}
	j.mu.Unlock()
	d.finish() // no pace: this goroutine delivers every room of the node
}

// decode turns a stored event into a Message: the cursor (and, if the
// publisher left it empty, the id) come from the stream sequence, which only
// exists once JetStream stored the event.
func (j *JetStream) decode(epoch string, seq uint64, subject string, hdr nats.Header, data []byte) (*Message, error) {
	r, err := subjectRoom(j.prefix, subject)
	if err != nil {
		return nil, err
	}
	ev := new(realtimev1.Event)
	if err := proto.Unmarshal(data, ev); err != nil {
		return nil, err
	}
	return stamp(Position{Epoch: epoch, Offset: seq}, Target{Room: r, ExceptUserID: hdr.Get(headerExceptUser)}, ev, ev.GetTime().AsTime())
}

// detachAllLocked removes every subscription from the hub and fails every
// pending resume; the caller ends the returned subscriptions after
// unlocking.
func (j *JetStream) detachAllLocked() []*Subscription {
	subs := j.hub.all()
	for _, s := range subs {
		j.hub.remove(s)
	}
	for _, set := range j.pending {
		for p := range set {
			if p.err == nil {
				p.err = fmt.Errorf("%w: the node's event feed was reset during the resume", ErrUnavailable)
			}
		}
	}
	return subs
}

func (j *JetStream) wakeWaitersLocked() {
	for ch, seq := range j.waiters {
		if j.head >= seq || j.closed {
			close(ch)
			delete(j.waiters, ch)
		}
	}
}
