package module

import (
	"context"
	"errors"
	"time"

	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	"github.com/honeydo/realtime/internal/auth"
	"github.com/honeydo/realtime/internal/broker"
	"github.com/honeydo/realtime/internal/room"
	"github.com/honeydo/realtime/internal/rpcerr"
)

// Emitter sends typed events from inside the server process: the Go
// counterpart of Socket.io's toUser, toHousehold, toOthers and broadcast.
// It is safe for concurrent use.
//
// Every method fills in ev.SenderUserId, when it is empty, with the user
// of the verified caller in ctx (a service caller is not a sender), so a
// handler emits with its own context and the event names its actor. Every
// error is a [*rpcerr.PublishError]; rpcerr.Error turns it into
// Unavailable when a retry can help.
type Emitter struct {
	b broker.Broker
}

// NewEmitter returns an Emitter that publishes through b.
func NewEmitter(b broker.Broker) *Emitter { return &Emitter{b: b} }

// Sent describes a published event.
type Sent struct {
	// ID is the event's id (Event.id).
	ID string
	// Cursor is the position a client may resume after (Event.cursor).
	Cursor string
	// Time is when the broker accepted the event.
	Time time.Time
}

// EmitOption adjusts one emit.
type EmitOption func(*emitOptions)

type emitOptions struct {
	exceptUser string
	noWaiting  bool
}

// ExceptUser leaves every stream of one user out of the audience (the
// Publish RPC's except_user_id). To skip only the client whose call caused
// the event, use [Emitter.ToOthers] instead: the actor's other devices
// should usually see the change.
func ExceptUser(userID string) EmitOption {
	return func(o *emitOptions) { o.exceptUser = userID }
}

// WithoutWaiting has the emit return as soon as the event is accepted,
// even if a stream of its audience is far behind: with the in-memory
// broker an emit otherwise waits up to 2 ms for such a stream to catch up
// (so that a fast emitter does not get it cut as a slow consumer). Use it
// when emitting while holding a lock that others need, such as a database
// transaction.
func WithoutWaiting() EmitOption {
	return func(o *emitOptions) { o.noWaiting = true }
}

// ToUser sends ev to every stream of one user.
func (e *Emitter) ToUser(ctx context.Context, userID string, ev *realtimev1.Event, opts ...EmitOption) (Sent, error) {
	if userID == "" {
		return Sent{}, &rpcerr.PublishError{Err: errors.New("ToUser needs a user id")}
	}
	return e.publish(ctx, room.User(userID), ev, opts)
}

// ToHousehold sends ev to every stream of every member of a household.
func (e *Emitter) ToHousehold(ctx context.Context, householdID string, ev *realtimev1.Event, opts ...EmitOption) (Sent, error) {
	if householdID == "" {
		return Sent{}, &rpcerr.PublishError{Err: errors.New("ToHousehold needs a household id")}
	}
	return e.publish(ctx, room.Household(householdID), ev, opts)
}

// ToOthers sends ev to everyone in a household but the client whose call
// caused it (Socket.io's toOthers): the event carries the calling client's
// origin (the Realtime-Origin header, which the server's interceptor puts
// in ctx) and that client, which already applied its own call's answer,
// skips it; the actor's other devices and tabs apply it. Without an origin
// in ctx (a background job) every stream handles the event.
func (e *Emitter) ToOthers(ctx context.Context, householdID string, ev *realtimev1.Event, opts ...EmitOption) (Sent, error) {
	if householdID == "" {
		return Sent{}, &rpcerr.PublishError{Err: errors.New("ToOthers needs a household id")}
	}
	if ev != nil && ev.Origin == "" {
		ev.Origin = broker.OriginFromContext(ctx)
	}
	return e.publish(ctx, room.Household(householdID), ev, opts)
}

// Broadcast sends ev to everyone connected.
func (e *Emitter) Broadcast(ctx context.Context, ev *realtimev1.Event, opts ...EmitOption) (Sent, error) {
	return e.publish(ctx, room.Broadcast, ev, opts)
}

func (e *Emitter) publish(ctx context.Context, to room.Name, ev *realtimev1.Event, opts []EmitOption) (Sent, error) {
	if e == nil || e.b == nil {
		return Sent{}, &rpcerr.PublishError{Err: errNoBroker}
	}
	var o emitOptions
	for _, opt := range opts {
		opt(&o)
	}
	if ev != nil && ev.SenderUserId == "" {
		if p, ok := auth.FromContext(ctx); ok && !p.Service {
			ev.SenderUserId = p.UserID
		}
	}
	if o.noWaiting {
		ctx = broker.WithoutWaiting(ctx)
	}
	msg, err := e.b.Publish(ctx, broker.Target{Room: to, ExceptUserID: o.exceptUser}, ev)
	if err != nil {
		return Sent{}, &rpcerr.PublishError{Err: err}
	}
	return Sent{ID: msg.Event.GetId(), Cursor: msg.Position.Cursor(), Time: msg.Time}, nil
}
