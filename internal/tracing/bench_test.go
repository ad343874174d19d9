package tracing_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"connectrpc.com/connect"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	"github.com/honeydo/realtime/gen/honeydo/realtime/v1/realtimev1connect"
	"github.com/honeydo/realtime/internal/metrics"
	"github.com/honeydo/realtime/internal/tracing"
)

// BenchmarkInterceptors is the per-call cost of the RPC metrics and the
// tracing interceptors: a Connect unary call served in process (no
// network, an empty Ping), with no interceptor, the metrics interceptor,
// the tracing interceptor (every span sampled and batched for an exporter
// that drops them) and both. The differences from "none" are the
// interceptors' overhead (docs/PERFORMANCE.md). Without an OTLP endpoint
// realtimed has no tracing interceptor, which is the "metrics" case.
func BenchmarkInterceptors(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	traced, err := tracing.NewInterceptor(tp)
	if err != nil {
		b.Fatal(err)
	}
	m := metrics.New()
	for _, c := range []struct {
		name         string
		interceptors []connect.Interceptor
	}{
		{"none", nil},
		{"metrics", []connect.Interceptor{m.RPCInterceptor()}},
		{"tracing", []connect.Interceptor{traced}},
		{"tracing+metrics", []connect.Interceptor{traced, m.RPCInterceptor()}},
	} {
		b.Run(c.name, func(b *testing.B) {
			h := connect.NewUnaryHandler(realtimev1connect.RealtimeServicePingProcedure,
				func(context.Context, *connect.Request[realtimev1.PingRequest]) (*connect.Response[realtimev1.PingResponse], error) {
					return connect.NewResponse(&realtimev1.PingResponse{}), nil
				},
				connect.WithInterceptors(c.interceptors...))
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, realtimev1connect.RealtimeServicePingProcedure, bytes.NewReader(nil))
				req.Header.Set("Content-Type", "application/proto")
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("status %d: %s", rec.Code, rec.Body)
				}
			}
		})
	}
}

// BenchmarkInterceptorsAlone is the interceptors' own cost per unary call,
// without connect's decoding and encoding around them: the wrapped
// function returns at once. The request is connect.NewRequest's, whose
// spec has an empty procedure; the interceptors take the same path for it.
func BenchmarkInterceptorsAlone(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	traced, err := tracing.NewInterceptor(tp)
	if err != nil {
		b.Fatal(err)
	}
	m := metrics.New()
	for _, c := range []struct {
		name        string
		interceptor connect.Interceptor
	}{
		{"metrics", m.RPCInterceptor()},
		{"tracing", traced},
	} {
		b.Run(c.name, func(b *testing.B) {
			res := connect.NewResponse(&realtimev1.PingResponse{})
			call := c.interceptor.WrapUnary(func(context.Context, connect.AnyRequest) (connect.AnyResponse, error) { return res, nil })
			req := connect.NewRequest(&realtimev1.PingRequest{})
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := call(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
