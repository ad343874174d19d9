package broker

import (
	"context"
	"errors"

	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	"github.com/honeydo/realtime/internal/room"
)

// Emitter sends events straight to a broker, returning the broker's
// [Message]: the Go counterpart of Socket.io's toUser, toHousehold,
// toOthers and broadcast at the broker's level, which tests and tools use.
// Modules get the module package's Emitter instead, which shares these
// rooms and the origin rule, fills in the sender and marks its errors as
// failed publishes for the error mapping.
//
// Set ev.SenderUserId to the user whose action caused the event: a client
// skips an event of its own origin only when the sender is its own user. An
// Emitter is safe for concurrent use.
type Emitter struct {
	broker Broker
}

// NewEmitter returns an Emitter that publishes through b.
func NewEmitter(b Broker) *Emitter { return &Emitter{broker: b} }

// ToUser sends ev to every stream of one user.
func (e *Emitter) ToUser(ctx context.Context, userID string, ev *realtimev1.Event) (*Message, error) {
	if userID == "" {
		return nil, errors.New("broker: ToUser needs a user id")
	}
	return e.broker.Publish(ctx, Target{Room: room.User(userID)}, ev)
}

// ToHousehold sends ev to every member of a household.
func (e *Emitter) ToHousehold(ctx context.Context, householdID string, ev *realtimev1.Event) (*Message, error) {
	if householdID == "" {
		return nil, errors.New("broker: ToHousehold needs a household id")
	}
	return e.broker.Publish(ctx, Target{Room: room.Household(householdID)}, ev)
}

// ToOthers sends ev to everyone in a household but the client whose call
// caused it: it goes to every stream of the household, the actor's other
// devices and tabs included, tagged with the calling client's origin
// ([OriginFromContext], set by the server from the request), and the client
// of that origin skips it, since it already applied its own call's answer.
// Without an origin in ctx (a background job, a client that sends none)
// every stream handles the event. An origin already set on ev is kept.
//
// To leave out every stream of a user instead, publish a [Target] with
// ExceptUserID; ToOthers no longer does, because it hid a person's change
// from their own other devices.
func (e *Emitter) ToOthers(ctx context.Context, householdID string, ev *realtimev1.Event) (*Message, error) {
	if householdID == "" {
		return nil, errors.New("broker: ToOthers needs a household id")
	}
	if ev != nil && ev.Origin == "" {
		ev.Origin = OriginFromContext(ctx)
	}
	return e.broker.Publish(ctx, Target{Room: room.Household(householdID)}, ev)
}

// Broadcast sends ev to everyone connected.
func (e *Emitter) Broadcast(ctx context.Context, ev *realtimev1.Event) (*Message, error) {
	return e.broker.Publish(ctx, Target{Room: room.Broadcast}, ev)
}
