package main

import (
	"context"

	"github.com/honeydo/realtime/internal/loadgen"
)

// runBench is the load generator that bench/peers/run.sh runs as its
// "custom" peer: the peers' flags and RESULT line (see docs/PERFORMANCE.md).
func runBench(ctx context.Context, io *stdio, args []string) error {
	return helpOK(loadgen.Main(ctx, args, io.stdout, io.stderr))
}
