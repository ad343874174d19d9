package broker

import (
	"fmt"
	"strconv"
	"time"

	"google.golang.org/protobuf/proto"

	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
)

// What every backend does to a published event, in one place: the checks
// before it is accepted, and the stamp that makes it a [Message] once it has
// a position.

// validateForPublish refuses an event that Publish must not accept: no
// target or payload, or fields that only the broker may set.
func validateForPublish(target Target, ev *realtimev1.Event) error {
	switch {
	case target.Room == "":
		return fmt.Errorf("%w: no target room", ErrInvalidEvent)
	case ev == nil || ev.Payload == nil:
		return fmt.Errorf("%w: the event has no payload", ErrInvalidEvent)
	case ev.Cursor != "" || ev.Time != nil:
		return fmt.Errorf("%w: cursor and time are assigned by the server", ErrInvalidEvent)
	case len(ev.Id) > 128:
		return fmt.Errorf("%w: id is longer than 128 characters", ErrInvalidEvent)
	case ev.Origin != "" && !ValidOrigin(ev.Origin):
		return fmt.Errorf("%w: origin must be 1-128 characters of [A-Za-z0-9._:~-]", ErrInvalidEvent)
	}
	return nil
}

// stamp gives ev its place in the log: the cursor of pos and, when the
// publisher left the id empty, an id made of pos ("<epoch>-<offset>", unique
// within a log). Then it encodes ev once, for every subscriber to share.
// accepted is when the broker accepted the event; the caller has already
// set ev.Time to it (Memory from its clock; JetStream when it stored the
// event, which a node that decodes the event later reads back from ev).
//
// Both backends call it: Memory when it publishes, JetStream when its
// publish is acknowledged and when it decodes a stored event, which is why
// a position's id and cursor are the same on every node.
func stamp(pos Position, target Target, ev *realtimev1.Event, accepted time.Time) (*Message, error) {
	if ev.Id == "" {
		ev.Id = pos.Epoch + "-" + strconv.FormatUint(pos.Offset, 10)
	}
	ev.Cursor = pos.Cursor()
	wire, err := proto.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidEvent, err)
	}
	return &Message{Position: pos, Target: target, Event: ev, Wire: wire, Time: accepted}, nil
}
