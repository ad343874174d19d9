package loadgen

import (
	"encoding/json"
	"math"
	"testing"
)

// TestResultKeys: the typed RESULT has exactly these keys, run by run: the
// ones the map it replaced had, so bench/peers' run.sh and report.js read
// it as before, plus the addresses and, with --publish-server-pid, the
// publishing node's figures (scripts/bench-cluster.sh reads them); unknown
// figures are null, not NaN (which is not JSON).
func TestResultKeys(t *testing.T) {
	common := []string{"peer", "workload", "conns", "size", "rate", "duration_ms", "protocol", "h2c", "addr", "publish_addr", "cross_node",
		"connected", "connect_failed", "connect_s", "connect_server_cpu_pct", "connect_client_cpu_pct", "disconnects"}
	idle := []string{"rss_before", "rss_after", "rss_after_gc", "bytes_per_conn", "bytes_per_conn_gc", "client_rss"}
	delivery := []string{"published", "publish_errors", "publish_s", "publish_rate", "expected", "received", "lost",
		"deliveries_per_s", "active_s", "p50_ms", "p99_ms", "max_ms", "server_cpu_pct", "client_cpu_pct",
		"server_rss_peak", "frames"}
	nan := measure(math.NaN())
	for _, c := range []struct {
		name string
		res  result
		want [][]string
	}{
		{"w1", result{idleResult: &idleResult{RSSBefore: nan}}, [][]string{common, idle}},
		{"w2 nothing received", result{deliveryResult: &deliveryResult{}}, [][]string{common, delivery}},
		{"w2 h2c", result{H2C: true, StreamsPerConn: 100, H2CConns: 1, ConnectFirstError: "x", deliveryResult: &deliveryResult{
			Frames: 1, EventsPerFrame: 2, ServerUsPerDelivery: measurePtr(math.Inf(1)), ClientUsPerDelivery: measurePtr(1),
			DisconnectLastError: "y"}},
			[][]string{common, delivery, {"streams_per_conn", "h2c_conns", "connect_first_error", "events_per_frame",
				"server_us_per_delivery", "client_us_per_delivery", "disconnect_last_error"}}},
		{"w4 cross-node nothing received", result{CrossNode: true, deliveryResult: &deliveryResult{
			publishServerResult: &publishServerResult{PublishServerCPUPct: nan}}},
			[][]string{common, delivery, {"publish_server_cpu_pct", "publish_server_rss_peak"}}},
		{"w4 cross-node", result{CrossNode: true, deliveryResult: &deliveryResult{
			ServerUsPerDelivery: measurePtr(1), ClientUsPerDelivery: measurePtr(1), Publishers: 4,
			publishServerResult: &publishServerResult{PublishServerUsPerDelivery: measurePtr(1), ServersUsPerDelivery: measurePtr(2)}}},
			[][]string{common, delivery, {"server_us_per_delivery", "client_us_per_delivery", "publishers", "publish_server_cpu_pct",
				"publish_server_rss_peak", "publish_server_us_per_delivery", "servers_us_per_delivery"}}},
		{"w1 tls none connected", result{TLSConns: new(int64(0)), idleResult: &idleResult{}}, [][]string{common, idle, {"tls_conns"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			b, err := json.Marshal(c.res)
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]any
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, keys := range c.want {
				want = append(want, keys...)
			}
			for _, k := range want {
				if _, ok := got[k]; !ok {
					t.Errorf("no %q in %s", k, b)
				}
				delete(got, k)
			}
			for k := range got {
				t.Errorf("unexpected key %q in %s", k, b)
			}
		})
	}
}
