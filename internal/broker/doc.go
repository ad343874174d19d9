// Package broker routes events to rooms and keeps the history that lets a
// subscriber resume after a disconnect.
//
// A [Broker] has two jobs: it orders published events into one log whose
// positions become cursors, and it fans each event out to the subscriptions
// that joined its room. [Memory] does both in process; other backends (NATS
// JetStream) keep the log elsewhere and reuse the in-process fan-out.
//
// Concurrency: every exported method of a Broker and of a [Subscription] may
// be called from any goroutine. Publish never blocks on a subscriber for
// long: each subscription has a bounded queue, and one that overflows is
// ended with [ErrSlowConsumer] while the others go on. Before that, a
// [Memory] publish whose event leaves a subscription more than a quarter
// of its queue behind waits up to 2 ms for it to catch up, once the event
// is queued for everyone, so that a fast publisher does not cut a
// subscriber that is only slow for a moment; [WithoutWaiting] opts a
// publish out. A published [realtimev1.Event]
// belongs to the broker from then on and must not be modified; the broker
// encodes it once and shares the bytes with every subscriber.
package broker
