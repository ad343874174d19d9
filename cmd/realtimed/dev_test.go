package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"testing"

	"connectrpc.com/connect"

	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
)

// devGet GETs path from p under the Host header host ("" for the dialled
// address) and returns the status and body.
func devGet(t *testing.T, p *binaryProcess, path, host string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", p.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, body
}

// TestDevBinary runs realtimed --dev as a developer does and attacks it as
// a web page could: through a domain rebound to 127.0.0.1 (refused unless
// REALTIMED_DEV_ALLOWED_HOSTS names it), and with a dev token whose custom
// rooms would otherwise become metric labels.
func TestDevBinary(t *testing.T) {
	t.Parallel()
	p := startBinary(t, []string{"REALTIMED_DEV_ALLOWED_HOSTS=devbox.lan"}, "--dev", "--metrics-addr", "127.0.0.1:0")

	for _, c := range []struct {
		host string
		want int
	}{
		{"rebound.evil.example", http.StatusForbidden},
		{"rebound.evil.example:8080", http.StatusForbidden},
		{"", http.StatusOK},
		{"localhost:8080", http.StatusOK},
		{"devbox.lan:8080", http.StatusOK},
	} {
		for _, path := range []string{"/dev/token?user=mallory&household=victims", "/dev/streams"} {
			if status, body := devGet(t, p, path, c.host); status != c.want {
				t.Errorf("GET %s with Host %q: %d, want %d (%s)", path, c.host, status, c.want, body)
			}
		}
	}

	q := url.Values{"user": {"alice"}, "household": {"home"}, "rooms": {"custom1,évil{x}\"y,room:bench,user:bob-as-room"}}
	status, body := devGet(t, p, "/dev/token?"+q.Encode(), "")
	if status != http.StatusOK {
		t.Fatalf("/dev/token: %d %s", status, body)
	}
	var tok struct{ Token string }
	if err := json.Unmarshal(body, &tok); err != nil || tok.Token == "" {
		t.Fatalf("/dev/token answered %s (%v)", body, err)
	}
	rebound := realtimeClientWithHost(t, p, tok.Token, "rebound.evil.example")
	if _, err := rebound.WhoAmI(context.Background(), connect.NewRequest(&realtimev1.WhoAmIRequest{})); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Errorf("WhoAmI under a rebound Host: %v, want PermissionDenied", err)
	}
	if _, err := openLiveStream(t, p.realtimeClient(t, tok.Token)); err != nil {
		t.Fatal(err)
	}
	labels := regexp.MustCompile(`room_kind="([^"]*)"`)
	seen := map[string]bool{}
	for _, line := range p.scrape(t, "realtime_subscriptions{") {
		m := labels.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("no room_kind in %q", line)
			continue
		}
		seen[m[1]] = true
		switch m[1] {
		case "user", "household", "broadcast", "room", "other":
		default:
			t.Errorf("room_kind %q is not one of the fixed kinds: %s", m[1], line)
		}
	}
	if !seen["other"] || !seen["room"] {
		t.Errorf("room kinds %v: want the custom rooms counted as other and room:bench as room", seen)
	}
}
