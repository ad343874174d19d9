package broker

import (
	"errors"
	"fmt"
	"time"
)

// The consumer's supervisor: it looks at the stream every few seconds and
// when poked, restarts the node consumer when it must, and keeps the
// outcome for Ready.

func (j *JetStream) poke() {
	select {
	case j.kick <- struct{}{}:
	default:
	}
}

// supervise checks the stream every few seconds (and when poked): a new
// identity, events that expired before this node delivered them, or a
// skipped sequence restart the consumer. The ordered consumer itself
// recovers from reconnects and lost heartbeats.
func (j *JetStream) supervise() {
	defer close(j.done)
	defer j.stopConsumer()
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	running := true
	backoff := 100 * time.Millisecond
	for {
		if !running {
			info, err := j.streamInfo(j.ctx)
			j.setStreamErr(err)
			if err == nil {
				err = j.startConsumer(info)
			}
			if err == nil {
				running, backoff = true, 100*time.Millisecond
			} else if j.ctx.Err() == nil {
				j.log.Warn("node consumer not running; retrying", "err", err, "in", backoff)
				select {
				case <-time.After(backoff):
				case <-j.ctx.Done():
					return
				}
				backoff = min(2*backoff, 5*time.Second)
				continue
			}
		}
		select {
		case <-j.ctx.Done():
			return
		case <-tick.C:
		case <-j.kick:
		}
		j.mu.Lock()
		restart := j.needRestart
		epoch, head := j.epoch, j.head
		j.mu.Unlock()
		if !restart && j.nc.IsConnected() {
			info, err := j.streamInfo(j.ctx)
			j.setStreamErr(err)
			if err != nil {
				continue // the client reconnects; the ordered consumer follows
			}
			st := info.State
			restart = streamEpoch(info.Config.Name, info.Created) != epoch ||
				(st.LastSeq > head && st.FirstSeq > head+1) || st.LastSeq < head
		}
		if restart {
			j.stopConsumer()
			running = false
		}
	}
}

// setStreamErr records the outcome of the supervisor's look at the stream,
// for Ready. A failure caused by Close is not an outage.
func (j *JetStream) setStreamErr(err error) {
	if j.ctx.Err() != nil {
		return
	}
	if err != nil && !errors.Is(err, ErrUnavailable) {
		err = fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if (err == nil) != (j.streamErr == nil) {
		j.ready.notify()
	}
	j.streamErr = err
}

// Ready implements [Broker]. The node can serve while it is connected to
// NATS, its consumer runs (it feeds every live subscription) and the
// supervisor's last look at the stream succeeded; the supervisor looks
// every 2 seconds and right after a reconnect.
func (j *JetStream) Ready() (<-chan struct{}, error) {
	// The channel comes first: a change after this point closes it. The
	// connection's own lock is never taken under j.mu.
	j.mu.Lock()
	ch := j.ready.wait()
	j.mu.Unlock()
	connected, status := j.nc.IsConnected(), j.nc.Status()
	j.mu.Lock()
	defer j.mu.Unlock()
	switch {
	case j.closed:
		return ch, ErrClosed
	case !connected:
		return ch, fmt.Errorf("%w: not connected to NATS (%s)", ErrUnavailable, status)
	case j.cc == nil:
		return ch, fmt.Errorf("%w: this node's event feed from the stream is not running", ErrUnavailable)
	case j.streamErr != nil:
		return ch, j.streamErr
	}
	return ch, nil
}
