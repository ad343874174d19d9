package loadgen

import (
	"encoding/json"
	"math"
)

// result is the RESULT line: the keys every peer's generator prints
// (bench/peers/README.md; run.sh and report.js read them by name) and ours.
// Keys that a run does not measure are left out, as the peers leave them
// out: the W1 keys after an idle run, the delivery keys after the others.
type result struct {
	Peer       string  `json:"peer"`
	Workload   string  `json:"workload"` // --name
	Conns      int     `json:"conns"`
	Size       int     `json:"size"`
	Rate       float64 `json:"rate"`
	DurationMs int     `json:"duration_ms"`
	Protocol   string  `json:"protocol"`
	H2C        bool    `json:"h2c"`
	// Addr is the subscribers' server (--addr), PublishAddr the one
	// /bench/publish went to (--publish-addr); CrossNode says they differ,
	// i.e. every delivery crossed from one node to the other (over NATS).
	Addr        string `json:"addr"`
	PublishAddr string `json:"publish_addr"`
	CrossNode   bool   `json:"cross_node"`
	// With --h2c only.
	StreamsPerConn int `json:"streams_per_conn,omitempty"`
	H2CConns       int `json:"h2c_conns,omitempty"`
	// Over https:// only: the TLS connections the subscribers opened, each
	// with HTTP/2 negotiated by ALPN; one per connected subscriber.
	TLSConns *int64 `json:"tls_conns,omitempty"`

	Connected           int64   `json:"connected"`
	ConnectFailed       int64   `json:"connect_failed"`
	ConnectFirstError   string  `json:"connect_first_error,omitempty"`
	ConnectS            float64 `json:"connect_s"`
	ConnectServerCPUPct measure `json:"connect_server_cpu_pct"`
	ConnectClientCPUPct measure `json:"connect_client_cpu_pct"`
	Disconnects         int64   `json:"disconnects"`

	*idleResult     // W1
	*deliveryResult // W2, W3, W4
}

// idleResult is what W1 measures: the server's RSS before the streams,
// after them, and after a GC, and per stream.
type idleResult struct {
	RSSBefore      measure `json:"rss_before"`
	RSSAfter       measure `json:"rss_after"`
	RSSAfterGC     measure `json:"rss_after_gc"`
	BytesPerConn   measure `json:"bytes_per_conn"`
	BytesPerConnGC measure `json:"bytes_per_conn_gc"`
	ClientRSS      measure `json:"client_rss"`
}

// deliveryResult is what the publishing workloads measure.
type deliveryResult struct {
	Published      int64   `json:"published"`
	PublishErrors  float64 `json:"publish_errors"`
	PublishS       float64 `json:"publish_s"`
	PublishRate    measure `json:"publish_rate"`
	Expected       int64   `json:"expected"`
	Received       int64   `json:"received"`
	Lost           int64   `json:"lost"`
	DeliveriesPerS measure `json:"deliveries_per_s"`
	ActiveS        float64 `json:"active_s"`
	P50Ms          measure `json:"p50_ms"`
	P99Ms          measure `json:"p99_ms"`
	MaxMs          measure `json:"max_ms"`
	ServerCPUPct   measure `json:"server_cpu_pct"`
	ClientCPUPct   measure `json:"client_cpu_pct"`
	ServerRSSPeak  int64   `json:"server_rss_peak"`
	Frames         int64   `json:"frames"`
	// Only when any frame (events per frame) or event (CPU per delivery)
	// arrived.
	EventsPerFrame      float64  `json:"events_per_frame,omitempty"`
	ServerUsPerDelivery *measure `json:"server_us_per_delivery,omitempty"`
	ClientUsPerDelivery *measure `json:"client_us_per_delivery,omitempty"`
	DisconnectLastError string   `json:"disconnect_last_error,omitempty"`
	// With --publishers above 1 only.
	Publishers int `json:"publishers,omitempty"`

	// With --publish-server-pid only.
	*publishServerResult
}

// publishServerResult is the publishing server's share when it is another
// process than the subscribers' (--publish-server-pid). The server_* keys
// are then the subscribers' server alone, and servers_us_per_delivery is
// both together: the figure to set beside one node's server_us_per_delivery.
type publishServerResult struct {
	PublishServerCPUPct  measure `json:"publish_server_cpu_pct"`
	PublishServerRSSPeak int64   `json:"publish_server_rss_peak"`
	// Only when any event arrived.
	PublishServerUsPerDelivery *measure `json:"publish_server_us_per_delivery,omitempty"`
	ServersUsPerDelivery       *measure `json:"servers_us_per_delivery,omitempty"`
}

// measure is a figure that may be unknown: NaN or ±Inf (no --server-pid,
// nothing to divide by) is written as null, which keeps the line valid
// JSON.
type measure float64

// MarshalJSON implements json.Marshaler.
func (m measure) MarshalJSON() ([]byte, error) {
	f := float64(m)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	return json.Marshal(f)
}

// measurePtr returns a pointer to m, for the keys that are present only
// sometimes.
func measurePtr(m float64) *measure {
	v := measure(m)
	return &v
}
