// Package client is the Go client of HoneyDo Realtime: a resilient
// subscriber over the generated Connect client
// ([realtimev1connect.RealtimeServiceClient]) that keeps one Subscribe
// stream open for as long as its context lives.
//
// # Delivery
//
// [Subscribe] hands every event to its [Handler] in order, one at a time,
// and remembers the cursor of the last event the handler accepted (returned
// nil for). When the stream ends — the token expired, the connection broke,
// the server shut down, the client read too slowly, or the heartbeat
// watchdog found the connection dead — it reconnects with a fresh token and
// that cursor, and the server replays what was missed. Within the server's
// history window (2 minutes by default) the handler therefore sees every
// event exactly once, in order, across any number of reconnects.
//
// When the server cannot resume — the cursor left its history window, its
// history was lost in a restart (a new epoch), or it rejects the cursor —
// events may have been missed. The subscriber then calls
// [Options.OnResync] before handing over any later event, so the
// application can refetch its state, and goes on from the new stream's
// position.
//
// # Reconnecting
//
// The rules are the contract of docs/RECONNECT.md, which the browser
// client follows too. Failed attempts are retried with exponential backoff
// and full jitter ([Backoff]: 1 s doubling up to 5 s by default); a stream
// that ended because its token expired, or whose token was refused when it
// opened, is reopened at once with a fresh token. Errors that a retry
// cannot fix end [Subscribe]: a credential rejected twice in a row without
// a welcome in between (Unauthenticated), PermissionDenied, Unimplemented
// (a wrong base URL), FailedPrecondition, NotFound, and InvalidArgument
// when there was no cursor to drop.
//
// # Own changes
//
// Events a household member causes go to every stream of the household,
// that person's other devices included. A client that applies the answers
// to its own calls sets [Options.Origin] (from [NewOrigin]) and sends it on
// those calls with [WithOrigin]: the server tags the events they cause with
// it, and [Subscribe] skips them.
//
// # Concurrency
//
// [Subscribe] calls the handler and the [Options.OnStatus] and
// [Options.OnResync] callbacks from the goroutine that called it, one at a
// time, never concurrently: they need no locking among themselves. Several
// Subscribe calls may run at once with the same or different [Options].
package client
