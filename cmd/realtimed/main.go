// Command realtimed is the HoneyDo Realtime server: Connect, gRPC and
// gRPC-Web on one port, pushing typed events to the rooms of verified users.
// Run `realtimed --help` for its flags.
//
// It is a thin main: flags (flags.go) are checked (check.go) and wired
// into the server, the broker and the modules (run.go, nats.go,
// modules.go), the same internal packages an application embedding the
// service through github.com/honeydo/realtime uses.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/honeydo/realtime/internal/version"
)

const synopsis = `realtimed — HoneyDo Realtime server.

Usage:
  realtimed --dev                 local development: no Clerk account needed
  realtimed [flags]               production: CLERK_SECRET_KEY or CLERK_JWT_KEY required
  realtimed --version             the module version and VCS revision it was built from

One port serves Connect, gRPC and gRPC-Web over HTTP/1.1 and h2c, or HTTP/2
over TLS with --tls-cert/--tls-key. Stop it with SIGINT or SIGTERM: open
streams end with UNAVAILABLE so clients reconnect, then it exits 0.

Feature modules (--modules) serve their own services next to
RealtimeService. In production none runs unless --modules names it, and
without a module realtimed keeps no data: --data-dir is not even created.
--dev runs the shopping module for the web demo unless --modules says
otherwise.
`

// envOverrides are flags whose environment variable is not REALTIMED_*:
// Clerk's own names, so one .env serves every HoneyDo service.
var envOverrides = map[string]string{
	"clerk-secret-key":         "CLERK_SECRET_KEY",
	"clerk-jwt-key":            "CLERK_JWT_KEY",
	"clerk-authorized-parties": "CLERK_AUTHORIZED_PARTIES",
	"clerk-api-url":            "CLERK_API_URL",
}

func main() {
	if version.Requested(os.Args[1:]) {
		version.Print(os.Stdout, "realtimed")
		return
	}
	o, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "realtimed:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "realtimed:", err)
		os.Exit(1)
	}
}
