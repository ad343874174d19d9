package tracing_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"connectrpc.com/connect"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/honeydo/realtime/client"
	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	"github.com/honeydo/realtime/gen/honeydo/realtime/v1/realtimev1connect"
	"github.com/honeydo/realtime/internal/server"
	"github.com/honeydo/realtime/internal/testkit"
	"github.com/honeydo/realtime/internal/testkit/otlptest"
	"github.com/honeydo/realtime/internal/testkit/poll"
	"github.com/honeydo/realtime/internal/tracing"
)

func attr(s sdktrace.ReadOnlySpan, key attribute.Key) string {
	for _, kv := range s.Attributes() {
		if kv.Key == key {
			return kv.Value.Emit()
		}
	}
	return ""
}

// TestSpans: a real server with the tracing interceptor records one server
// span per RPC, named after the procedure, with its method and status code;
// a caller's traceparent becomes a link, never the parent.
func TestSpans(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	interceptor, err := tracing.NewInterceptor(tp)
	if err != nil {
		t.Fatal(err)
	}
	srv := testkit.StartServer(t, func(c *server.Config) { c.Interceptors = []connect.Interceptor{interceptor} })
	c := realtimev1connect.NewRealtimeServiceClient(testkit.HTTPClient(t, false), srv.URL,
		client.BearerToken(srv.Token(t, "alice", "home", time.Minute)))
	ctx := context.Background()

	remote := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
		SpanID:  trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8}, TraceFlags: trace.FlagsSampled, Remote: true,
	})
	ping := connect.NewRequest(&realtimev1.PingRequest{})
	ping.Header().Set("traceparent", fmt.Sprintf("00-%s-%s-01", remote.TraceID(), remote.SpanID()))
	if _, err := c.Ping(ctx, ping); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Publish(ctx, connect.NewRequest(&realtimev1.PublishRequest{})); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("Publish with a user token: %v", err)
	}

	var spans tracetest.SpanStubs
	poll.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		spans = exp.GetSpans()
		if len(spans) < 2 {
			return fmt.Errorf("%d spans", len(spans))
		}
		return nil
	})
	byName := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range spans.Snapshots() {
		byName[s.Name()] = s
	}
	for name, code := range map[string]string{
		"honeydo.realtime.v1.RealtimeService/Ping":    "OK",
		"honeydo.realtime.v1.RealtimeService/Publish": "PERMISSION_DENIED",
	} {
		s, ok := byName[name]
		if !ok {
			t.Errorf("no span %q among %d", name, len(spans))
			continue
		}
		if s.SpanKind() != trace.SpanKindServer {
			t.Errorf("%s: kind %v", name, s.SpanKind())
		}
		if got := attr(s, "rpc.method"); got != name {
			t.Errorf("%s: rpc.method %q", name, got)
		}
		if got := attr(s, "rpc.response.status_code"); got != code {
			t.Errorf("%s: rpc.response.status_code %q, want %q", name, got, code)
		}
	}
	p := byName["honeydo.realtime.v1.RealtimeService/Ping"]
	if p == nil {
		return
	}
	if p.Parent().IsValid() || p.SpanContext().TraceID() == remote.TraceID() {
		t.Errorf("the caller's span became the parent: parent %v, trace %v", p.Parent(), p.SpanContext().TraceID())
	}
	if links := p.Links(); len(links) != 1 || links[0].SpanContext.TraceID() != remote.TraceID() {
		t.Errorf("links %v, want the caller's span", links)
	}
}

// TestEnabled: only an endpoint turns export on, and the SDK's own
// switches turn it off again.
func TestEnabled(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want bool
	}{
		{nil, false},
		{map[string]string{"OTEL_SERVICE_NAME": "x", "OTEL_EXPORTER_OTLP_HEADERS": "a=b"}, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"}, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_TRACES_EXPORTER": "none"}, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_TRACES_EXPORTER": "otlp"}, true},
	} {
		if got := tracing.Enabled(func(k string) string { return tc.env[k] }); got != tc.want {
			t.Errorf("Enabled(%v) = %v, want %v", tc.env, got, tc.want)
		}
	}
}

// TestFromEnvOff: without an endpoint there is no pipeline and no
// interceptor, and the nil Tracing's methods are safe.
func TestFromEnvOff(t *testing.T) {
	t.Setenv(tracing.EnvEndpoint, "")
	t.Setenv(tracing.EnvTracesEndpoint, "")
	tr, err := tracing.FromEnv(context.Background(), "realtimed", "test")
	if err != nil || tr != nil {
		t.Fatalf("FromEnv = %v, %v; want nil, nil", tr, err)
	}
	if n := len(tr.Interceptors()); n != 0 {
		t.Errorf("%d interceptors", n)
	}
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Error(err)
	}
}

// TestFromEnvExports: with OTEL_EXPORTER_OTLP_ENDPOINT set, a real
// server's spans reach an OTLP/HTTP collector when the pipeline shuts
// down, and no sooner (the batch delay is an hour): Shutdown flushes.
func TestFromEnvExports(t *testing.T) {
	col := otlptest.NewCollector(t)
	t.Setenv(tracing.EnvEndpoint, col.URL)
	t.Setenv(tracing.EnvTracesEndpoint, "")
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "3600000")
	t.Setenv("OTEL_SERVICE_NAME", "")
	t.Setenv("OTEL_RESOURCE_ATTRIBUTES", "")
	tr, err := tracing.FromEnv(context.Background(), "realtimed", "test")
	if err != nil || tr == nil {
		t.Fatalf("FromEnv = %v, %v", tr, err)
	}
	srv := testkit.StartServer(t, func(c *server.Config) { c.Interceptors = tr.Interceptors() })
	c := realtimev1connect.NewRealtimeServiceClient(testkit.HTTPClient(t, false), srv.URL,
		client.BearerToken(srv.Token(t, "alice", "home", time.Minute)))
	if _, err := c.WhoAmI(context.Background(), connect.NewRequest(&realtimev1.WhoAmIRequest{})); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	if n := col.Requests(); n != 0 {
		t.Fatalf("%d exports before shutdown", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := tr.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	spans := col.Spans()
	if len(spans) != 1 {
		t.Fatalf("collector got %v, want one span", spans)
	}
	s := spans[0]
	if s.Name != "honeydo.realtime.v1.RealtimeService/WhoAmI" || s.Service != "realtimed" || s.Attributes["rpc.response.status_code"] != "OK" {
		t.Errorf("span %+v", s)
	}
}
