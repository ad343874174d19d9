// Package tracing traces realtimed's RPCs with OpenTelemetry and exports
// the spans over OTLP/HTTP, when and only when the standard OpenTelemetry
// environment names an endpoint (OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT). Without one, [FromEnv] returns nil
// and the server runs no tracing code at all: no interceptor, no provider,
// no goroutine.
//
// Spans come from connectrpc.com/otelconnect (one server span per RPC,
// named after its procedure, with the rpc.method and
// rpc.response.status_code attributes). A caller's traceparent header is
// read with the W3C Trace Context propagator, but its span only becomes a
// link, not the parent: the API is public, and a caller must not decide
// which trace our spans join or whether they are sampled.
//
// A [Tracing] is safe for concurrent use. Its spans are batched and sent by
// the SDK's one export goroutine, which [Tracing.Shutdown] stops after a
// last flush.
package tracing

import (
	"context"
	"fmt"
	"os"
	"strings"

	"connectrpc.com/connect"
	"connectrpc.com/otelconnect"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// The environment variables that turn tracing on; every other OTEL_*
// variable the OTLP exporter and the SDK know (headers, compression,
// timeout, certificates, OTEL_TRACES_SAMPLER, OTEL_BSP_*, OTEL_SERVICE_NAME,
// OTEL_RESOURCE_ATTRIBUTES) applies as documented by OpenTelemetry.
const (
	// EnvEndpoint is the collector's base URL; spans go to <url>/v1/traces.
	EnvEndpoint = "OTEL_EXPORTER_OTLP_ENDPOINT"
	// EnvTracesEndpoint is the full URL spans are posted to; it wins over
	// EnvEndpoint.
	EnvTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
)

// Enabled reports whether getenv configures trace export: an endpoint is
// set, and neither OTEL_SDK_DISABLED=true nor OTEL_TRACES_EXPORTER=none
// says otherwise.
func Enabled(getenv func(string) string) bool {
	if getenv(EnvEndpoint) == "" && getenv(EnvTracesEndpoint) == "" {
		return false
	}
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return false
	}
	return !strings.EqualFold(strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")), "none")
}

// Tracing is the OTLP trace pipeline of a process and the interceptor
// that feeds it.
type Tracing struct {
	provider    *sdktrace.TracerProvider
	interceptor connect.Interceptor
	// Endpoint is the configured endpoint, for the startup log.
	Endpoint string
}

// FromEnv returns the trace pipeline the process environment asks for, or
// nil (and no error) when [Enabled] is false. service and version name the
// process in the spans' resource (service.name, service.version) unless
// OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES say otherwise. Call
// Shutdown when the server has stopped, to send the last spans.
func FromEnv(ctx context.Context, service, version string) (*Tracing, error) {
	if !Enabled(os.Getenv) {
		return nil, nil
	}
	exporter, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	// Later options win: the environment overrides our names.
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", service), attribute.String("service.version", version)),
		resource.WithFromEnv(),
		resource.WithTelemetrySDK(),
	)
	if err != nil {
		_ = exporter.Shutdown(ctx)
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	provider := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exporter), sdktrace.WithResource(res))
	interceptor, err := NewInterceptor(provider)
	if err != nil {
		_ = provider.Shutdown(ctx)
		return nil, err
	}
	endpoint := os.Getenv(EnvTracesEndpoint)
	if endpoint == "" {
		endpoint = os.Getenv(EnvEndpoint)
	}
	return &Tracing{provider: provider, interceptor: interceptor, Endpoint: endpoint}, nil
}

// NewInterceptor returns a Connect handler interceptor that starts a server
// span on tp for every RPC. Only spans: OpenTelemetry metrics stay off, the
// Prometheus set (internal/metrics) has the RPC metrics.
func NewInterceptor(tp trace.TracerProvider) (connect.Interceptor, error) {
	i, err := otelconnect.NewInterceptor(
		otelconnect.WithTracerProvider(tp),
		otelconnect.WithoutMetrics(),
		otelconnect.WithPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})),
	)
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	return i, nil
}

// Interceptors returns the interceptors to put first in the server's
// chain: none for a nil Tracing.
func (t *Tracing) Interceptors() []connect.Interceptor {
	if t == nil {
		return nil
	}
	return []connect.Interceptor{t.interceptor}
}

// Shutdown sends the spans not yet exported and stops the export
// goroutine, within ctx. Call it after the server has stopped, so that the
// spans of the last RPCs are included. It is a no-op for a nil Tracing.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	if err := t.provider.Shutdown(ctx); err != nil {
		return fmt.Errorf("tracing: flushing spans: %w", err)
	}
	return nil
}
