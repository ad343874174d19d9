package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	"github.com/honeydo/realtime/gen/honeydo/realtime/v1/realtimev1connect"
	"github.com/honeydo/realtime/internal/testkit"
	"github.com/honeydo/realtime/internal/testkit/otlptest"
	"github.com/honeydo/realtime/internal/testkit/poll"
)

// devToken mints a token from p's /dev/token.
func devToken(t *testing.T, p *binaryProcess, user string) string {
	t.Helper()
	status, body := devGet(t, p, "/dev/token?user="+user+"&household=home", "")
	var tok struct{ Token string }
	if status != http.StatusOK || json.Unmarshal(body, &tok) != nil || tok.Token == "" {
		t.Fatalf("/dev/token: %d %s", status, body)
	}
	return tok.Token
}

// callAll makes an answered call, one the handler refuses and one the
// credential gate refuses.
func callAll(t *testing.T, p *binaryProcess, token string) {
	t.Helper()
	ctx := context.Background()
	c := p.realtimeClient(t, token)
	if _, err := c.Ping(ctx, connect.NewRequest(&realtimev1.PingRequest{})); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Publish(ctx, connect.NewRequest(&realtimev1.PublishRequest{})); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("Publish with a user token: %v", err)
	}
	anonymous := realtimev1connect.NewRealtimeServiceClient(testkit.HTTPClient(t, false), p.URL)
	if _, err := anonymous.WhoAmI(ctx, connect.NewRequest(&realtimev1.WhoAmIRequest{})); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("WhoAmI without a token: %v", err)
	}
}

// TestRPCMetricsBinary: realtimed's --metrics-addr serves the per-RPC
// series of real calls, and without an OTLP endpoint in its environment it
// does not trace.
func TestRPCMetricsBinary(t *testing.T) {
	t.Parallel()
	p := startBinary(t, []string{"OTEL_EXPORTER_OTLP_ENDPOINT=", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="}, "--dev", "--metrics-addr", "127.0.0.1:0")
	callAll(t, p, devToken(t, p, "alice"))
	const rt = "honeydo.realtime.v1.RealtimeService/"
	for _, want := range []string{
		`realtime_rpc_duration_seconds_count{code="ok",procedure="` + rt + `Ping",type="unary"} 1`,
		`realtime_rpc_duration_seconds_count{code="permission_denied",procedure="` + rt + `Publish",type="unary"} 1`,
		`realtime_rpc_duration_seconds_count{code="unauthenticated",procedure="` + rt + `WhoAmI",type="unary"} 1`,
		`realtime_rpc_started_total{procedure="` + rt + `Ping",type="unary"} 1`,
	} {
		name, _, _ := strings.Cut(want, "{")
		if got := p.scrape(t, name); !slices.Contains(got, want) {
			t.Errorf("/metrics lacks %s; has %q", want, got)
		}
	}
	if strings.Contains(p.logs.String(), "tracing:") {
		t.Errorf("tracing started without an endpoint:\n%s", p.logs.String())
	}
}

// TestOTLPTracesBinary: with OTEL_EXPORTER_OTLP_ENDPOINT set, realtimed
// exports its RPCs' spans to that collector over OTLP/HTTP, and the spans
// still batched at SIGTERM are flushed before it exits (the batch delay is
// an hour, so only the shutdown flush can send them).
func TestOTLPTracesBinary(t *testing.T) {
	t.Parallel()
	col := otlptest.NewCollector(t)
	p := startBinary(t, []string{
		"OTEL_EXPORTER_OTLP_ENDPOINT=" + col.URL,
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=",
		"OTEL_BSP_SCHEDULE_DELAY=3600000",
		"OTEL_SERVICE_NAME=realtimed-test",
		"OTEL_SDK_DISABLED=", "OTEL_TRACES_EXPORTER=",
	}, "--dev")
	callAll(t, p, devToken(t, p, "alice"))
	if n := col.Requests(); n != 0 {
		t.Errorf("%d exports before shutdown", n)
	}
	p.Stop()
	want := map[string]string{
		"honeydo.realtime.v1.RealtimeService/Ping":    "OK",
		"honeydo.realtime.v1.RealtimeService/Publish": "PERMISSION_DENIED",
	}
	// The exit waited for the flush; the poll only guards against the
	// collector's handler finishing a moment after answering.
	poll.Eventually(t, 10*time.Second, 20*time.Millisecond, func() error {
		spans := col.Spans()
		for name, code := range want {
			i := slices.IndexFunc(spans, func(s otlptest.Span) bool { return s.Name == name })
			if i < 0 {
				return fmt.Errorf("no span %s in %+v", name, spans)
			}
			if s := spans[i]; s.Service != "realtimed-test" || s.Attributes["rpc.response.status_code"] != code || s.Attributes["rpc.method"] != name {
				return fmt.Errorf("span %+v", s)
			}
		}
		return nil
	})
	if !strings.Contains(p.logs.String(), `"msg":"tracing: exporting spans over OTLP/HTTP","endpoint":"`+col.URL+`"`) {
		t.Errorf("no startup line for tracing:\n%s", p.logs.String())
	}
}
