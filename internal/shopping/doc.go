// Package shopping is the reference feature module: a household's shopping
// list kept in SQLite, served as honeydo.shopping.v1.ShoppingService, and
// announced to the rest of the household as realtime events.
//
// It shows the pattern every module follows (docs/MODULES.md has the
// steps):
//
//   - [Module] is what the server knows of it (package module): a name and
//     a Mount that builds ShoppingService with the server's handler options
//     and emitter. realtimed runs it with --modules shopping; an embedding
//     application passes it in its options.
//   - The household comes from the caller's verified principal
//     ([auth.RequireUser]), never from the request.
//   - The [Store] is plain domain code: it validates (text fields with the
//     rule every module shares, package textrule), scopes every query by
//     household and returns sentinel errors ([ErrInvalid], [ErrNotFound],
//     [ErrListFull]); it does not know about Connect.
//   - Nothing grows without bound: a household holds at most
//     [DefaultMaxItemsPerHousehold] items unless configured
//     ([WithMaxItemsPerHousehold]), and ListItems returns pages
//     ([Store.ListPage]) with opaque, sealed page tokens.
//   - The [Service] makes the write and its event stand or fall together:
//     it writes in a SQLite transaction, publishes the event to the
//     household ([module.Emitter.ToOthers]: tagged with the calling
//     client's origin, so that this client, which already shows its own
//     change, skips it, while the actor's other devices apply it) while the
//     transaction is open, and
//     commits only once the broker has accepted the event. If the publish
//     fails (NATS unreachable, broker shut down) the write is rolled back
//     and the call fails with Unavailable: nothing changed, so a retry is
//     safe.
//   - Errors get their codes from one table of the module's sentinels
//     (errorRules) and, for everything else (auth, broker, a failed publish,
//     cancellation), from package rpcerr, which the server uses too.
//
// Why publish before the commit: committing first and then emitting leaves
// two bad choices when the emit fails. Returning success drops the event
// silently (the other members never hear of the change until they happen
// to refetch); returning an error after the change was made makes clients
// retry a change that succeeded, adding duplicate items. Publishing inside
// the transaction turns the common failure (broker unreachable) into a
// clean "nothing happened". The remaining gap is a commit that fails after
// the publish (disk full, I/O error): the event then describes a change
// that did not persist; the call fails with Internal, it is logged with the
// event id, and clients converge because every resync refetches the list
// (ListItems is the truth) and item versions reconcile.
//
// Why not a transactional outbox (write the event into an outbox table in
// the same transaction, relay it to the broker afterwards): it closes that
// gap, but needs a relay process, retries, de-duplication by event id and
// monitoring of the backlog — more moving parts than the reference module
// needs. It is the path for a module that needs stronger guarantees.
//
// Concurrency: [Store] and [Service] are safe for concurrent use. A write
// holds SQLite's write lock from BEGIN to COMMIT, publish included, so
// writes are serialized and their events are published in commit order;
// the price is that one publish (a JetStream round trip, bounded at 5 s)
// is on every write's critical path.
package shopping
