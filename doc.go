// Package realtime embeds the HoneyDo Realtime service in a Go server: the
// server-streaming Subscribe RPC that pushes typed events to a person's
// rooms (their user, their household, everyone), with Clerk verification,
// resumable streams and an in-memory or NATS JetStream broker.
//
// An application creates one [Realtime] with [New], mounts it on its own
// [net/http.ServeMux] next to its own Connect services ([Realtime.Mount]),
// puts [Realtime.Interceptor] on those services so that one Clerk
// configuration verifies every call, reads the verified caller with
// [Caller] and emits events from its handlers with [Realtime.Emitter]:
//
//	rt, err := realtime.New(ctx, realtime.Options{
//		Clerk: realtime.ClerkOptions{SecretKey: os.Getenv("CLERK_SECRET_KEY")},
//	})
//	mux := http.NewServeMux()
//	rt.Mount(mux)
//	mux.Handle(choresv1connect.NewChoresServiceHandler(chores, connect.WithInterceptors(rt.Interceptor())))
//
// Events are protobuf messages: a case of the payload oneof of
// honeydo.realtime.v1.Event (the generated realtimev1.Event), never JSON.
// Features that bring their own services and events can also be packaged
// as a [Module] and passed in [Options.Modules]; docs/MODULES.md in the
// repository shows how, with the shopping list as the reference module.
//
// realtimed (cmd/realtimed) is the standalone server built from the same
// internal packages; it adds what a service of its own needs (TLS,
// health and reflection, the dev endpoints and the web demo) and reads
// the same settings from flags.
package realtime
