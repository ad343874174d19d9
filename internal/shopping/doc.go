// Package shopping is the reference feature module: a household's shopping
// list kept in SQLite, served as honeydo.shopping.v1.ShoppingService, and
// announced to the rest of the household as realtime events.
//
// It shows the pattern every module follows:
//
//   - The household comes from the caller's verified principal
//     ([auth.FromContext]), never from the request.
//   - The [Store] is plain domain code: it validates, scopes every query by
//     household and returns sentinel errors ([ErrInvalid], [ErrNotFound]);
//     it does not know about Connect.
//   - The [Service] performs the write, and only after it committed emits
//     the event to the household except the actor ([broker.Emitter.ToOthers]),
//     whose client already shows its own change.
//
// Concurrency: [Store] and [Service] are safe for concurrent use. Events of
// one household reach subscribers in the order their writes were emitted;
// two writes racing on the same item may emit in either order, and clients
// keep the copy with the higher version.
package shopping
