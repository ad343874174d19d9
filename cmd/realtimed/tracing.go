package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/honeydo/realtime/internal/tracing"
	"github.com/honeydo/realtime/internal/version"
)

// startTracing sets up span export when the OpenTelemetry environment
// names an OTLP endpoint (internal/tracing); otherwise it returns nil and
// realtimed runs no tracing code.
func startTracing(ctx context.Context, log *slog.Logger) (*tracing.Tracing, error) {
	tr, err := tracing.FromEnv(ctx, "realtimed", version.Read().Module)
	if tr != nil {
		log.Info("tracing: exporting spans over OTLP/HTTP", "endpoint", tr.Endpoint)
	}
	return tr, err
}

// flushTraces sends the spans not yet exported, within timeout. Run it
// after the server has stopped, so the last RPCs' spans go too.
func flushTraces(tr *tracing.Tracing, log *slog.Logger, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := tr.Shutdown(ctx); err != nil {
		log.Warn("spans lost at shutdown", "err", err)
	}
}
