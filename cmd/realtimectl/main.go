// Command realtimectl is the terminal companion of realtimed: it mints dev
// tokens, follows a Subscribe stream as JSON lines (reconnecting and
// resuming like the browser client), publishes events with a service key,
// and calls Ping and WhoAmI. Run `realtimectl --help` for its commands and
// `realtimectl <command> --help` for each command's flags; every flag can
// also be set by an environment variable.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err == nil {
		return
	}
	fmt.Fprintln(os.Stderr, "realtimectl:", err)
	var ue *usageError
	if errors.As(err, &ue) {
		os.Exit(2)
	}
	os.Exit(1)
}
