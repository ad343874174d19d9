package devhost_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/honeydo/realtime/client"
	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	"github.com/honeydo/realtime/gen/honeydo/realtime/v1/realtimev1connect"
	"github.com/honeydo/realtime/internal/server"
	"github.com/honeydo/realtime/internal/testkit"
)

// hostRewriter sends every request under another Host, as a browser does
// for a page whose domain was rebound to the server's address.
type hostRewriter struct {
	host string
	next http.RoundTripper
}

func (h hostRewriter) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Host = h.host
	return h.next.RoundTrip(r)
}

// clientKinds are the ways a real client reaches the server: each protocol
// over HTTP/1.1 and h2c.
var clientKinds = []struct {
	name     string
	h2c      bool
	protocol []connect.ClientOption
}{
	{name: "connect-http1"},
	{name: "connect-h2c", h2c: true},
	{name: "connect-json-http1", protocol: []connect.ClientOption{connect.WithProtoJSON()}},
	{name: "grpc-h2c", h2c: true, protocol: []connect.ClientOption{connect.WithGRPC()}},
	{name: "grpcweb-http1", protocol: []connect.ClientOption{connect.WithGRPCWeb()}},
	{name: "grpcweb-h2c", h2c: true, protocol: []connect.ClientOption{connect.WithGRPCWeb()}},
}

func hostClient(t *testing.T, host string, h2c bool) *http.Client {
	t.Helper()
	c := testkit.HTTPClient(t, h2c)
	if host != "" {
		c.Transport = hostRewriter{host: host, next: c.Transport}
	}
	return c
}

// TestDevModeRefusesForeignHosts is the DNS-rebinding attack: a page whose
// domain resolves to 127.0.0.1 calls the dev server under its own name. Every
// route of a dev server refuses it, RPCs with PermissionDenied in every
// protocol, the loopback names and --dev-allowed-hosts pass, and a
// production server (no dev key) does not look at Host at all.
func TestDevModeRefusesForeignHosts(t *testing.T) {
	web := t.TempDir()
	if err := os.WriteFile(filepath.Join(web, "index.html"), []byte("<!doctype html>demo"), 0o600); err != nil {
		t.Fatal(err)
	}
	dev := testkit.StartServer(t, func(c *server.Config) {
		c.BenchAPI = true
		c.WebDir = web
		c.DevAllowedHosts = []string{"Realtime.LAN:8080"}
	})
	prod := testkit.StartServer(t, func(c *server.Config) { c.Dev = nil })
	token := dev.Token(t, "alice", "home", time.Minute)

	routes := []string{"/dev/token?user=mallory&household=victims", "/dev/streams", "/bench/info", "/"}
	hosts := []struct {
		host string
		ok   bool
	}{
		{"evil.example", false},
		{"evil.example:8080", false},
		{"127.0.0.1.evil.example", false},
		{"localhost.evil.example:80", false},
		{"10.0.0.7:8080", false},
		{"", true}, // the dialled address, 127.0.0.1:port
		{"localhost", true},
		{"LOCALHOST:9999", true},
		{"127.0.0.1", true},
		{"127.1.2.3:8080", true},
		{"[::1]:8080", true},
		{"[::1]", true},
		{"realtime.lan:1234", true},
	}
	for _, h := range hosts {
		name := h.host
		if name == "" {
			name = "dialled"
		}
		t.Run(name, func(t *testing.T) {
			for _, route := range routes {
				res, err := hostClient(t, h.host, false).Get(dev.URL + route)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				want := http.StatusForbidden
				// The bench API can flood every stream: allowed names do
				// not open it, only the loopback does.
				if h.ok && (!strings.HasPrefix(route, "/bench/") || !strings.HasPrefix(h.host, "realtime.lan")) {
					want = http.StatusOK
				}
				if res.StatusCode != want {
					t.Errorf("GET %s: status %d, want %d (%s)", route, res.StatusCode, want, body)
				}
				if !h.ok && strings.Contains(string(body), "token") && strings.Contains(string(body), "eyJ") {
					t.Errorf("GET %s leaked a token: %s", route, body)
				}
			}
			for _, kind := range clientKinds {
				opts := append([]connect.ClientOption{client.BearerToken(token)}, kind.protocol...)
				c := realtimev1connect.NewRealtimeServiceClient(hostClient(t, h.host, kind.h2c), dev.URL, opts...)
				_, err := c.WhoAmI(context.Background(), connect.NewRequest(&realtimev1.WhoAmIRequest{}))
				switch {
				case h.ok && err != nil:
					t.Errorf("%s WhoAmI: %v", kind.name, err)
				case !h.ok && connect.CodeOf(err) != connect.CodePermissionDenied:
					t.Errorf("%s WhoAmI: %v, want PermissionDenied", kind.name, err)
				}
				if h.ok {
					continue
				}
				// The stream is refused before it joins any room.
				rs, err := c.Subscribe(context.Background(), connect.NewRequest(&realtimev1.SubscribeRequest{}))
				if err == nil {
					for rs.Receive() {
						t.Errorf("%s Subscribe: got a frame under a foreign Host", kind.name)
					}
					err = rs.Err()
					rs.Close()
				}
				if connect.CodeOf(err) != connect.CodePermissionDenied {
					t.Errorf("%s Subscribe: %v, want PermissionDenied", kind.name, err)
				}
			}
		})
	}

	// Without a dev key nothing mints tokens, and Host is the proxy's
	// business: a production server answers any name it is reached by.
	c := realtimev1connect.NewRealtimeServiceClient(hostClient(t, "realtime.honeydo.example", false), prod.URL, client.BearerToken(prod.Token(t, "alice", "home", time.Minute)))
	if _, err := c.WhoAmI(context.Background(), connect.NewRequest(&realtimev1.WhoAmIRequest{})); err != nil {
		t.Errorf("production server under its public name: %v", err)
	}
}
