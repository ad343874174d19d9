package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
)

// Publishing to the stream, with retries under one message id while a
// stream leader is elected or the connection comes back.

// headerExceptUser carries Target.ExceptUserID; the room is the subject.
const headerExceptUser = "Honeydo-Except-User"

// Publish implements [Broker]. It returns after JetStream stored the event
// (on a quorum of replicas); the event then reaches every node through its
// consumer. With NATS unreachable it fails at once with an error wrapping
// [ErrUnavailable].
//
// After an Unavailable the event may or may not have been stored (the ack
// can be lost with the connection). An event whose id the caller set is
// idempotent: publishing it again to the same target within the stream's
// duplicate window (the history age, at most 2 minutes) stores it once and
// returns its original position. Without an id a retry may duplicate it.
func (j *JetStream) Publish(ctx context.Context, target Target, ev *realtimev1.Event) (*Message, error) {
	if err := validateForPublish(target, ev); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	j.mu.Lock()
	closed, epoch := j.closed, j.epoch
	j.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	if !j.nc.IsConnected() {
		return nil, fmt.Errorf("%w: not connected to NATS (%s)", ErrUnavailable, j.nc.Status())
	}
	ev.Time = timestamppb.Now()
	data, err := proto.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidEvent, err)
	}
	msg := nats.NewMsg(roomSubject(j.prefix, target.Room))
	msg.Data = data
	if target.ExceptUserID != "" {
		msg.Header.Set(headerExceptUser, target.ExceptUserID)
	}
	ctx, cancel := j.opCtx(ctx, j.cfg.PublishTimeout)
	defer cancel()
	// One message id for every attempt: if an ack is lost and we retry,
	// JetStream stores the event once and acks the retry with its sequence.
	// An id chosen by the caller makes the id stable across the caller's
	// own retries too (scoped to the target, since a service may send one
	// id to several users).
	id := nuid.Next()
	if ev.Id != "" {
		id = "ev|" + msg.Subject + "|" + target.ExceptUserID + "|" + ev.Id
	}
	var ack *jetstream.PubAck
	for attempt := 0; ; attempt++ {
		ack, err = j.js.PublishMsg(ctx, msg, jetstream.WithMsgID(id), jetstream.WithExpectStream(j.cfg.Stream),
			jetstream.WithRetryAttempts(0))
		if err == nil || !retryablePublishError(err) || !j.nc.IsConnected() {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(min(time.Duration(attempt+1)*50*time.Millisecond, 500*time.Millisecond)):
			continue
		}
		break
	}
	if err != nil {
		ev.Time = nil // leave the event as it came, so that the caller may retry it
		if cerr := context.Cause(ctx); errors.Is(cerr, context.Canceled) {
			return nil, cerr // the caller gave up
		}
		// After a lost connection or a timeout the event may or may not
		// have been stored: like any Unavailable, the caller may retry.
		return nil, fmt.Errorf("%w: JetStream did not acknowledge the event: %v", ErrUnavailable, err)
	}
	return stamp(Position{Epoch: epoch, Offset: ack.Sequence}, target, ev, ev.Time.AsTime())
}

// retryablePublishError reports errors that a stream leader election or a
// reconnect can cause, after which the same publish may succeed.
func retryablePublishError(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.Code == 503 || apiErr.Code == 500
	}
	return errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, nats.ErrReconnectBufExceeded) || errors.Is(err, nats.ErrConnectionReconnecting)
}
