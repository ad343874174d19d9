package loadgen_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/honeydo/realtime/internal/auth"
	"github.com/honeydo/realtime/internal/loadgen"
	"github.com/honeydo/realtime/internal/server"
	"github.com/honeydo/realtime/internal/testkit"
)

// benchAPI serves realtimed's benchmark control API, which the generator
// drives.
func benchAPI(c *server.Config) { c.BenchAPI = true }

// runBench runs Main and returns its RESULT object.
func runBench(t *testing.T, args ...string) map[string]any {
	t.Helper()
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := loadgen.Main(ctx, args, &stdout, &stderr); err != nil {
		t.Fatalf("Main: %v\nstderr:\n%s", err, stderr.String())
	}
	line, ok := strings.CutPrefix(strings.TrimSpace(stdout.String()), "RESULT ")
	if !ok || strings.Contains(line, "\n") {
		t.Fatalf("stdout is not one RESULT line: %q", stdout.String())
	}
	var res map[string]any
	if err := json.Unmarshal([]byte(line), &res); err != nil {
		t.Fatalf("RESULT: %v: %s", err, line)
	}
	return res
}

// peerKeys are the keys every generator's RESULT line has (run.sh's report
// reads them).
var peerKeys = []string{"peer", "workload", "conns", "size", "rate", "duration_ms", "connected",
	"connect_failed", "connect_s", "connect_server_cpu_pct", "connect_client_cpu_pct"}

var measureKeys = []string{"published", "publish_errors", "publish_s", "publish_rate", "expected",
	"received", "lost", "disconnects", "deliveries_per_s", "active_s", "p50_ms", "p99_ms", "max_ms",
	"server_cpu_pct", "client_cpu_pct", "server_rss_peak", "server_us_per_delivery",
	"client_us_per_delivery", "protocol", "h2c", "frames", "events_per_frame"}

func TestMain_Workloads(t *testing.T) {
	srv := testkit.StartServer(t, benchAPI)
	url, dir := srv.URL, srv.DataDir
	pid := strconv.Itoa(os.Getpid()) // the server runs in this process
	cases := []struct {
		name string
		args []string
		want int64 // expected deliveries
	}{
		{"w2-connect-http1", []string{"--workload", "w2", "--conns", "20", "--rate", "400", "--duration-ms", "250"}, 20 * 100},
		{"w2-connect-h2c", []string{"--workload", "w2", "--conns", "20", "--rate", "400", "--duration-ms", "250", "--h2c", "--streams-per-conn", "8"}, 20 * 100},
		{"w2-grpc", []string{"--workload", "w2", "--conns", "20", "--rate", "400", "--duration-ms", "250", "--protocol", "grpc"}, 20 * 100},
		{"w4-connect-http1", []string{"--workload", "w4", "--conns", "50", "--rate", "400", "--duration-ms", "250"}, 100},
		{"w4-dev-token", []string{"--workload", "w4", "--conns", "10", "--rate", "400", "--duration-ms", "250", "--data-dir", ""}, 100},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--addr", url, "--server-pid", pid, "--data-dir", dir, "--progress", "0", "--idle", "1s"}, tc.args...)
			res := runBench(t, args...)
			for _, k := range append(peerKeys, measureKeys...) {
				if _, ok := res[k]; !ok {
					t.Errorf("RESULT has no %q: %v", k, res)
				}
			}
			if res["connected"] != res["conns"] || res["connect_failed"] != 0.0 {
				t.Fatalf("connected %v of %v, failed %v (%v)", res["connected"], res["conns"], res["connect_failed"], res["connect_first_error"])
			}
			if got := int64(res["received"].(float64)); got != tc.want || res["lost"] != 0.0 || res["expected"] != float64(tc.want) {
				t.Fatalf("expected %v, received %v, lost %v; want %d each", res["expected"], res["received"], res["lost"], tc.want)
			}
			if res["disconnects"] != 0.0 {
				t.Fatalf("disconnects %v: %v", res["disconnects"], res["disconnect_last_error"])
			}
			if p99, ok := res["p99_ms"].(float64); !ok || p99 <= 0 {
				t.Fatalf("p99_ms = %v", res["p99_ms"])
			}
		})
	}
}

func TestMain_IdleW1(t *testing.T) {
	srv := testkit.StartServer(t, benchAPI)
	res := runBench(t, "--addr", srv.URL, "--server-pid", strconv.Itoa(os.Getpid()), "--data-dir", srv.DataDir,
		"--workload", "w1", "--conns", "30", "--settle", "10ms", "--progress", "0")
	if res["connected"] != 30.0 || res["bytes_per_conn"] == nil || res["disconnects"] != 0.0 {
		t.Fatalf("RESULT %v", res)
	}
}

func TestMain_Errors(t *testing.T) {
	url := testkit.StartServer(t, benchAPI).URL
	for _, args := range [][]string{
		{"--workload", "w9"},
		{"--protocol", "websocket"},
		{"--proto", "json"},
		{"--publishers", "0"},
		{"--addr", url, "--data-dir", t.TempDir(), "--conns", "1"}, // no dev key there
	} {
		var stdout, stderr bytes.Buffer
		if err := loadgen.Main(context.Background(), args, &stdout, &stderr); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
	// Tokens the server rejects (signed by another dev key) fail the
	// connect, and the run says so.
	other := t.TempDir()
	if _, err := auth.LoadOrCreateDevKey(other); err != nil {
		t.Fatal(err)
	}
	res := runBench(t, "--addr", url, "--data-dir", other, "--workload", "w1", "--conns", "2", "--settle", "0s",
		"--household-size", "0", "--progress", "0")
	if res["connected"] != 0.0 || res["connect_failed"] != 2.0 || !strings.Contains(res["connect_first_error"].(string), "unauthenticated") {
		t.Fatalf("RESULT %v", res)
	}
}

// TestMain_AddrSpellings: the server is --addr as in every realtimectl
// command, a bare host:port included, also from REALTIMECTL_ADDR; the
// peers' --url still works, with a warning on stderr.
func TestMain_AddrSpellings(t *testing.T) {
	srv := testkit.StartServer(t, benchAPI)
	w1 := []string{"--data-dir", srv.DataDir, "--workload", "w1", "--conns", "2", "--settle", "0s", "--progress", "0"}
	for _, tc := range []struct {
		name, env string
		args      []string
		warning   string
	}{
		{"host:port", "", []string{"--addr", srv.Addr}, ""},
		{"env", srv.URL, nil, ""},
		{"deprecated --url", "", []string{"--url", srv.URL, "--token-ttl", "5m"}, "--url is deprecated and will be removed: use --addr"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv("REALTIMECTL_ADDR", tc.env)
			}
			var stdout, stderr bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if err := loadgen.Main(ctx, append(tc.args, w1...), &stdout, &stderr); err != nil {
				t.Fatalf("Main: %v\nstderr:\n%s", err, stderr.String())
			}
			if !strings.Contains(stdout.String(), `"connected":2`) {
				t.Fatalf("stdout %s", stdout.String())
			}
			if tc.warning != "" && !strings.Contains(stderr.String(), tc.warning) {
				t.Fatalf("stderr lacks %q:\n%s", tc.warning, stderr.String())
			}
			if tc.warning == "" && strings.Contains(stderr.String(), "deprecated") {
				t.Fatalf("stderr warns:\n%s", stderr.String())
			}
		})
	}
}

// TestMain_TLS: against an https:// server every subscriber has a TLS
// connection of its own that negotiated HTTP/2 by ALPN (tls_conns ==
// connected == conns), and W1 and W4 lose nothing, as over HTTP/1.1.
func TestMain_TLS(t *testing.T) {
	srv := testkit.StartTLSServer(t, benchAPI)
	pid := strconv.Itoa(os.Getpid()) // the server runs in this process
	common := []string{"--addr", srv.URL, "--server-pid", pid, "--progress", "0", "--idle", "1s"}
	for _, tc := range []struct {
		name  string
		args  []string
		label string
		conns float64
		want  int64 // expected deliveries; -1 for W1
	}{
		{"w1", []string{"--ca-file", srv.CAFile, "--data-dir", srv.DataDir, "--workload", "w1", "--conns", "40", "--settle", "10ms"}, "realtimed-tls", 40, -1},
		{"w4", []string{"--ca-file", srv.CAFile, "--data-dir", srv.DataDir, "--workload", "w4", "--conns", "40", "--rate", "400", "--duration-ms", "250"}, "realtimed-tls", 40, 100},
		{"w2-grpc", []string{"--ca-file", srv.CAFile, "--data-dir", srv.DataDir, "--workload", "w2", "--conns", "12", "--rate", "400", "--duration-ms", "250", "--protocol", "grpc"}, "realtimed-tls-grpc", 12, 12 * 100},
		// Tokens from /dev/token over TLS, and no certificate check.
		{"w4-dev-token-insecure", []string{"--insecure-skip-verify", "--workload", "w4", "--conns", "8", "--rate", "400", "--duration-ms", "250"}, "realtimed-tls", 8, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := runBench(t, append(common, tc.args...)...)
			if res["peer"] != tc.label || res["h2c"] != false {
				t.Errorf("peer %v, h2c %v; want %s, false", res["peer"], res["h2c"], tc.label)
			}
			if res["connected"] != tc.conns || res["connect_failed"] != 0.0 {
				t.Fatalf("connected %v of %v, failed %v (%v)", res["connected"], tc.conns, res["connect_failed"], res["connect_first_error"])
			}
			if res["tls_conns"] != tc.conns {
				t.Fatalf("tls_conns %v, want %v: one TLS connection per subscriber", res["tls_conns"], tc.conns)
			}
			if res["disconnects"] != 0.0 {
				t.Fatalf("disconnects %v: %v", res["disconnects"], res["disconnect_last_error"])
			}
			if tc.want < 0 {
				if res["bytes_per_conn"] == nil {
					t.Fatalf("W1 without bytes_per_conn: %v", res)
				}
				return
			}
			if res["received"] != float64(tc.want) || res["lost"] != 0.0 || res["expected"] != float64(tc.want) {
				t.Fatalf("expected %v, received %v, lost %v; want %d each", res["expected"], res["received"], res["lost"], tc.want)
			}
		})
	}

	// The server sees them as separate connections too: with a budget of
	// 10 connections per address, loopback included, 20 subscribers do not
	// all get in.
	limited := testkit.StartTLSServer(t, benchAPI, func(c *server.Config) {
		c.ConnLimits = server.ConnLimits{PerAddr: 10, Exempt: []netip.Prefix{}}
	})
	res := runBench(t, "--addr", limited.URL, "--ca-file", limited.CAFile, "--data-dir", limited.DataDir,
		"--workload", "w1", "--conns", "20", "--settle", "0s", "--progress", "0")
	if c, f := res["connected"].(float64), res["connect_failed"].(float64); c > 10 || f < 10 || res["tls_conns"] != c {
		t.Fatalf("under a budget of 10: connected %v, failed %v, tls_conns %v (%v)", c, f, res["tls_conns"], res["connect_first_error"])
	}
}

// TestMain_TLSFlags: combinations that make no sense over TLS, or without
// it, are refused with a message that says why, before any traffic; a
// server whose certificate is not trusted is refused with what to do.
func TestMain_TLSFlags(t *testing.T) {
	srv := testkit.StartTLSServer(t, benchAPI)
	noCA := filepath.Join(t.TempDir(), "none.pem")
	for _, tc := range []struct {
		name string
		env  string // REALTIMECTL_STREAMS_PER_CONN
		args []string
		want string
	}{
		{"h2c over https", "", []string{"--addr", "https://127.0.0.1:1", "--h2c"}, "--h2c is cleartext HTTP/2, for http:// only"},
		{"grpc h2c over https", "", []string{"--addr", "https://127.0.0.1:1", "--protocol", "grpc", "--h2c"}, "--h2c is cleartext HTTP/2"},
		{"streams-per-conn over https", "", []string{"--addr", "https://127.0.0.1:1", "--streams-per-conn", "10"}, "--streams-per-conn is for --h2c only"},
		{"streams-per-conn from env over https", "10", []string{"--addr", "https://127.0.0.1:1"}, "--streams-per-conn is for --h2c only"},
		{"ca-file over http", "", []string{"--addr", "http://127.0.0.1:1", "--ca-file", srv.CAFile}, "need an https:// --addr"},
		{"insecure over http", "", []string{"--addr", "127.0.0.1:1", "--insecure-skip-verify"}, "need an https:// --addr"},
		{"ca-file and insecure", "", []string{"--addr", "https://127.0.0.1:1", "--ca-file", srv.CAFile, "--insecure-skip-verify"}, "exclude each other"},
		{"no such ca-file", "", []string{"--addr", "https://127.0.0.1:1", "--ca-file", noCA}, "--ca-file: open " + noCA},
		{"publish-addr in another scheme", "", []string{"--addr", "https://127.0.0.1:1", "--publish-addr", "http://127.0.0.1:2"}, "use one scheme for both"},
		{"path in addr", "", []string{"--addr", "https://127.0.0.1:1/x"}, "want http://host:port or https://host:port"},
		{"untrusted certificate", "", []string{"--addr", srv.URL, "--workload", "w4", "--conns", "1"}, "pass its CA certificate with --ca-file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv("REALTIMECTL_STREAMS_PER_CONN", tc.env)
			}
			var stdout, stderr bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			err := loadgen.Main(ctx, append(tc.args, "--progress", "0"), &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v; want one containing %q", err, tc.want)
			}
			if stdout.Len() != 0 {
				t.Fatalf("stdout: %s", stdout.String())
			}
		})
	}
}
