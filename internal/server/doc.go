// Package server assembles the HTTP server of realtimed: the Connect
// handlers (RealtimeService and the services of the modules in
// Config.Modules, which it knows only as module.Module) behind the credential
// gate (gate.go) and the auth and rate limit interceptors, gRPC reflection,
// health and the /healthz and /readyz probes (ready while the broker can
// serve and not shutting down), CORS, the dev-mode endpoints (mounted from
// packages devapi and benchapi, behind the Host guard of package devhost)
// and the static web demo, on one port that speaks HTTP/1.1, h2c and, with
// a certificate, HTTP/2 over TLS, with a per-source-address connection
// budget (listener.go). An application that embeds the service (the root
// package) takes only the RPC routes ([Server.ServiceRoutes]) and the
// interceptors ([Server.Interceptors]) and serves them on its own mux.
//
// Each Subscribe stream waits on its subscription, a heartbeat timer, the
// token's expiry and the server's shutdown signal. Once its welcome is out
// it goes direct (direct.go): it leaves Connect's handler and parks
// without a goroutine of its own (parked.go), run only when one of those
// wakes it. Over HTTP/1.1 it takes over the connection, and one goroutine
// for the whole server (package connwatch) notices clients leaving; over
// HTTP/2 its handler's goroutine waits, on a small stack, until it ends.
// Shutdown wakes the direct streams and waits for them.
package server
