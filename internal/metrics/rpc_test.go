package metrics_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/honeydo/realtime/client"
	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	"github.com/honeydo/realtime/gen/honeydo/realtime/v1/realtimev1connect"
	shoppingv1 "github.com/honeydo/realtime/gen/honeydo/shopping/v1"
	"github.com/honeydo/realtime/gen/honeydo/shopping/v1/shoppingv1connect"
	"github.com/honeydo/realtime/internal/metrics"
	"github.com/honeydo/realtime/internal/server"
	"github.com/honeydo/realtime/internal/testkit"
	"github.com/honeydo/realtime/internal/testkit/poll"
)

// scrape GETs /metrics from a real listener serving m, as Prometheus does,
// and returns the value of every series whose name starts with prefix,
// keyed by the series as written (name and labels).
func scrape(t *testing.T, m *metrics.Metrics, prefix string) map[string]float64 {
	t.Helper()
	ts := httptest.NewServer(m.Handler())
	defer ts.Close()
	res, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func series(name, procedure, typ, code string) string {
	if code == "" {
		return fmt.Sprintf(`%s{procedure=%q,type=%q}`, name, procedure, typ)
	}
	return fmt.Sprintf(`%s{code=%q,procedure=%q,type=%q}`, name, code, procedure, typ)
}

// TestRPCMetrics makes real calls to a real server (Connect and gRPC, unary
// and streaming, answered and refused) and finds each in the scraped
// exposition under its procedure, type and code; a path that names no
// procedure is counted as "unknown", never under its own name.
func TestRPCMetrics(t *testing.T) {
	m := metrics.New()
	srv := testkit.StartServer(t, func(c *server.Config) { c.Metrics = m })
	ctx := context.Background()
	token := srv.Token(t, "alice", "home", time.Minute)
	hc := testkit.HTTPClient(t, false)
	connectClient := realtimev1connect.NewRealtimeServiceClient(hc, srv.URL, client.BearerToken(token))
	grpcClient := realtimev1connect.NewRealtimeServiceClient(testkit.HTTPClient(t, true), srv.URL, client.BearerToken(token), connect.WithGRPC())
	anonymous := realtimev1connect.NewRealtimeServiceClient(hc, srv.URL)
	shop := shoppingv1connect.NewShoppingServiceClient(hc, srv.URL, client.BearerToken(token))

	for _, c := range []realtimev1connect.RealtimeServiceClient{connectClient, grpcClient} {
		if _, err := c.Ping(ctx, connect.NewRequest(&realtimev1.PingRequest{})); err != nil {
			t.Fatal(err)
		}
	}
	// A user's token may not publish: the handler refuses it.
	_, err := connectClient.Publish(ctx, connect.NewRequest(&realtimev1.PublishRequest{}))
	if code := connect.CodeOf(err); code != connect.CodePermissionDenied {
		t.Fatalf("Publish with a user token: %v, want permission_denied", err)
	}
	// No credential: the gate refuses it before any interceptor.
	_, err = anonymous.WhoAmI(ctx, connect.NewRequest(&realtimev1.WhoAmIRequest{}))
	if code := connect.CodeOf(err); code != connect.CodeUnauthenticated {
		t.Fatalf("WhoAmI without a token: %v, want unauthenticated", err)
	}
	if _, err := shop.ListItems(ctx, connect.NewRequest(&shoppingv1.ListItemsRequest{})); err != nil {
		t.Fatal(err)
	}
	// Paths a caller makes up, under a mounted service, without a
	// credential: refused by the gate, all counted as one "unknown".
	for _, path := range []string{"/honeydo.realtime.v1.RealtimeService/Nope", "/honeydo.realtime.v1.RealtimeService/Ping/x", "/honeydo.realtime.v1.RealtimeService/%0Aevil"} {
		res, err := hc.Post(srv.URL+path, "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("POST %s: %s, want 401", path, res.Status)
		}
	}
	// A stream: open, welcomed, then closed by the client.
	sctx, cancel := context.WithCancel(ctx)
	stream, err := connectClient.Subscribe(sctx, connect.NewRequest(&realtimev1.SubscribeRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if !stream.Receive() || stream.Msg().GetWelcome() == nil {
		t.Fatalf("no welcome: %v", stream.Err())
	}
	const subscribe = "honeydo.realtime.v1.RealtimeService/Subscribe"
	if got := scrape(t, m, "realtime_rpc_started_total")[series("realtime_rpc_started_total", subscribe, "server_stream", "")]; got != 1 {
		t.Errorf("Subscribe started while open = %v, want 1", got)
	}
	cancel()
	stream.Close()

	const rt = "honeydo.realtime.v1.RealtimeService/"
	want := map[string]float64{
		series("realtime_rpc_started_total", rt+"Ping", "unary", ""):                                                  2,
		series("realtime_rpc_duration_seconds_count", rt+"Ping", "unary", "ok"):                                       2,
		series("realtime_rpc_duration_seconds_count", rt+"Publish", "unary", "permission_denied"):                     1,
		series("realtime_rpc_duration_seconds_count", rt+"WhoAmI", "unary", "unauthenticated"):                        1,
		series("realtime_rpc_duration_seconds_count", "honeydo.shopping.v1.ShoppingService/ListItems", "unary", "ok"): 1,
		series("realtime_rpc_duration_seconds_count", "unknown", "unknown", "unauthenticated"):                        3,
		series("realtime_rpc_started_total", "unknown", "unknown", ""):                                                3,
		series("realtime_rpc_started_total", subscribe, "server_stream", ""):                                          1,
		series("realtime_rpc_duration_seconds_count", subscribe, "server_stream", "canceled"):                         1,
	}
	var got map[string]float64
	poll.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		// The stream's handler returns after the client has gone.
		got = scrape(t, m, "realtime_rpc_")
		for k, v := range want {
			if got[k] != v {
				return fmt.Errorf("%s = %v, want %v", k, got[k], v)
			}
		}
		return nil
	})
	// Every procedure label is a procedure of ours or "unknown", and the
	// histogram has its buckets.
	for k := range got {
		_, rest, _ := strings.Cut(k, `procedure="`)
		proc, _, _ := strings.Cut(rest, `"`)
		if proc != "unknown" && !strings.HasPrefix(proc, "honeydo.realtime.v1.RealtimeService/") && !strings.HasPrefix(proc, "honeydo.shopping.v1.ShoppingService/") {
			t.Errorf("unexpected procedure label in %s", k)
		}
	}
	if got[`realtime_rpc_duration_seconds_bucket{code="ok",procedure="`+rt+`Ping",type="unary",le="+Inf"}`] != 2 {
		t.Errorf("no +Inf bucket for Ping: %v", got)
	}
}
