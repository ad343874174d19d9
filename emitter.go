package realtime

import "github.com/honeydo/realtime/internal/module"

// Emitter sends typed events (realtimev1.Event with its payload set) to
// the service's streams, from the handlers of the application and its
// modules. The audience is a room that streams join from their verified
// token, never from what a client asks for:
//
//	ToUser(ctx, userID, ev, opts...)           // every stream of one user
//	ToHousehold(ctx, householdID, ev, opts...) // every member of a household
//	ToOthers(ctx, householdID, ev, opts...)    // the household but the calling client (Socket.io toOthers)
//	Broadcast(ctx, ev, opts...)                // everyone connected
//
// Each returns a [Sent] once the broker accepted the event (in memory, or
// acknowledged by JetStream). It never blocks on a subscriber, but with the
// in-memory broker waits up to 2 ms for a stream of the audience that is
// more than a quarter of its queue behind, so that a fast emitter does not
// get it cut as a slow consumer; [WithoutWaiting] opts out. ToOthers
// tags the event with the calling client's origin (the Realtime-Origin
// header, which [Realtime.Interceptor] records) and that client skips it:
// it already applied its own call's answer, while the actor's other tabs
// and devices apply the event. [ExceptUser] instead leaves out every
// stream of one user.
//
// An event with no SenderUserId gets the verified caller's user id from
// ctx. Errors wrap the broker's; [ConnectError] turns them into the code a
// client should see (Unavailable when a retry can help). An Emitter is
// safe for concurrent use.
type Emitter = module.Emitter

// Sent describes a published event: ID (Event.id), Cursor (where a client
// resumes after it) and Time (when the broker accepted it).
type Sent = module.Sent

// EmitOption adjusts one emit of an [Emitter].
type EmitOption = module.EmitOption

// ExceptUser leaves every stream of userID out of an emit's audience,
// e.g. a household but the user who acted, on all of their devices.
func ExceptUser(userID string) EmitOption { return module.ExceptUser(userID) }

// WithoutWaiting has an emit return without waiting for a stream that is
// behind: for emits made while holding a lock others need, such as a
// database transaction.
func WithoutWaiting() EmitOption { return module.WithoutWaiting() }
