package server_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	"github.com/honeydo/realtime/internal/server"
)

// TestWebDirServing checks how realtimed serves a built web demo: gzip for
// text when the client accepts it, caching by kind of file, no source maps,
// no directory listings, and index.html for client-side routes.
func TestWebDirServing(t *testing.T) {
	dir := t.TempDir()
	index := "<!doctype html><title>HoneyDo</title>" + strings.Repeat("<!-- padding -->", 100)
	script := "console.log('HoneyDo');\n" + strings.Repeat("export const x = 1;\n", 200)
	style := ".a{color:red}\n" + strings.Repeat(".b{color:blue}\n", 200)
	tiny := "body{margin:0}"
	png := string(bytes.Repeat([]byte{0x89, 'P', 'N', 'G', 0, 1, 2, 3}, 300))
	for name, content := range map[string]string{
		"index.html":                   index,
		"assets/index-B3xq9zLm.js":     script,
		"assets/index-B3xq9zLm.js.map": `{"version":3}`,
		"assets/style-Dk2Pq0aa.css":    style,
		"assets/tiny-Aa1Bb2Cc.css":     tiny,
		"assets/logo-Ee3Ff4Gg.png":     png,
		"favicon.svg":                  "<svg xmlns='http://www.w3.org/2000/svg'/>",
		"robots.map":                   "not a source map, still refused",
		".env":                         "SECRET=1",
	} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	srv := newTestServer(t, func(c *server.Config) { c.WebDir = dir })

	const immutable = "public, max-age=31536000, immutable"
	cases := []struct {
		name, method, path string
		header             map[string]string
		status             int
		body               string // decoded; "" = not checked
		encoding           string // Content-Encoding
		cache              string // Cache-Control; "-" = must be absent
		vary               bool   // Vary: Accept-Encoding
		contentType        string // prefix
	}{
		{name: "index gzip", path: "/", header: map[string]string{"Accept-Encoding": "gzip, deflate, br"},
			status: 200, body: index, encoding: "gzip", cache: "no-cache", vary: true, contentType: "text/html"},
		{name: "index identity", path: "/", status: 200, body: index, cache: "no-cache", vary: true, contentType: "text/html"},
		{name: "index by name", path: "/index.html", header: map[string]string{"Accept-Encoding": "gzip"},
			status: 200, body: index, encoding: "gzip", cache: "no-cache", vary: true},
		{name: "client route falls back to index", path: "/list/settings", header: map[string]string{"Accept-Encoding": "gzip"},
			status: 200, body: index, encoding: "gzip", cache: "no-cache", vary: true, contentType: "text/html"},
		{name: "hashed script gzip", path: "/assets/index-B3xq9zLm.js", header: map[string]string{"Accept-Encoding": "gzip"},
			status: 200, body: script, encoding: "gzip", cache: immutable, vary: true, contentType: "text/javascript"},
		{name: "hashed script identity", path: "/assets/index-B3xq9zLm.js",
			status: 200, body: script, cache: immutable, vary: true, contentType: "text/javascript"},
		{name: "gzip refused with q=0", path: "/assets/index-B3xq9zLm.js", header: map[string]string{"Accept-Encoding": "gzip;q=0, br"},
			status: 200, body: script, cache: immutable, vary: true},
		{name: "wildcard accepts gzip", path: "/assets/style-Dk2Pq0aa.css", header: map[string]string{"Accept-Encoding": "*"},
			status: 200, body: style, encoding: "gzip", cache: immutable, vary: true, contentType: "text/css"},
		{name: "wildcard but gzip refused", path: "/assets/style-Dk2Pq0aa.css", header: map[string]string{"Accept-Encoding": "gzip;q=0,*"},
			status: 200, body: style, cache: immutable, vary: true},
		{name: "range is served uncompressed", path: "/assets/index-B3xq9zLm.js",
			header: map[string]string{"Accept-Encoding": "gzip", "Range": "bytes=0-6"},
			status: http.StatusPartialContent, body: script[:7], cache: immutable, vary: true},
		{name: "tiny text not worth compressing", path: "/assets/tiny-Aa1Bb2Cc.css", header: map[string]string{"Accept-Encoding": "gzip"},
			status: 200, body: tiny, cache: immutable, vary: true},
		{name: "image not compressed", path: "/assets/logo-Ee3Ff4Gg.png", header: map[string]string{"Accept-Encoding": "gzip"},
			status: 200, body: png, cache: immutable, contentType: "image/png"},
		{name: "unhashed file revalidates", path: "/favicon.svg", status: 200, cache: "no-cache", vary: true, contentType: "image/svg+xml"},
		{name: "head", method: http.MethodHead, path: "/assets/index-B3xq9zLm.js", header: map[string]string{"Accept-Encoding": "gzip"},
			status: 200, encoding: "gzip", cache: immutable, vary: true},
		{name: "source map refused", path: "/assets/index-B3xq9zLm.js.map", status: 404, cache: "-"},
		{name: "any .map refused", path: "/robots.map", status: 404, cache: "-"},
		{name: "missing map refused, no index fallback", path: "/assets/nope.js.map", status: 404, cache: "-"},
		{name: "missing asset", path: "/assets/missing-Zz9Yy8Xx.js", status: 404, cache: "-"},
		{name: "no directory listing", path: "/assets/", status: 404, cache: "-"},
		{name: "no dotfiles", path: "/.env", status: 404, cache: "-"},
		{name: "post refused", method: http.MethodPost, path: "/", status: http.StatusMethodNotAllowed, cache: "-"},
	}
	// DisableCompression: the client must not ask for gzip (or decode it) by itself.
	hc := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	t.Cleanup(hc.CloseIdleConnections)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			method := c.method
			if method == "" {
				method = http.MethodGet
			}
			req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+c.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range c.header {
				req.Header.Set(k, v)
			}
			res, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := io.ReadAll(res.Body)
			res.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != c.status {
				t.Fatalf("status %d, want %d (body %.80q)", res.StatusCode, c.status, raw)
			}
			if got := res.Header.Get("Content-Encoding"); got != c.encoding {
				t.Errorf("Content-Encoding %q, want %q", got, c.encoding)
			}
			switch got := res.Header.Get("Cache-Control"); {
			case c.cache == "-" && (strings.Contains(got, "immutable") || strings.Contains(got, "max-age")):
				t.Errorf("Cache-Control %q on an error: a 404 must not be cached for long", got)
			case c.cache != "-" && c.cache != "" && got != c.cache:
				t.Errorf("Cache-Control %q, want %q", got, c.cache)
			}
			if got := strings.Contains(res.Header.Get("Vary"), "Accept-Encoding"); got != c.vary {
				t.Errorf("Vary %q, want Accept-Encoding: %v", res.Header.Get("Vary"), c.vary)
			}
			if c.contentType != "" && !strings.HasPrefix(res.Header.Get("Content-Type"), c.contentType) {
				t.Errorf("Content-Type %q, want %s", res.Header.Get("Content-Type"), c.contentType)
			}
			if method == http.MethodHead {
				if len(raw) != 0 {
					t.Errorf("HEAD returned a body of %d bytes", len(raw))
				}
				return
			}
			body := raw
			if c.encoding == "gzip" {
				if len(raw) >= len(c.body) {
					t.Errorf("gzip body is %d bytes, the file %d", len(raw), len(c.body))
				}
				zr, err := gzip.NewReader(bytes.NewReader(raw))
				if err != nil {
					t.Fatal(err)
				}
				if body, err = io.ReadAll(zr); err != nil {
					t.Fatal(err)
				}
			}
			if c.body != "" && string(body) != c.body {
				t.Errorf("body %.80q, want %.80q", body, c.body)
			}
		})
	}

	// A file rebuilt in place is served new, not from the gzip cache.
	script2 := strings.Replace(script, "HoneyDo", "HoneyDo 2", 1)
	p := filepath.Join(dir, "assets", "index-B3xq9zLm.js")
	if err := os.WriteFile(p, []byte(script2), 0o644); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/assets/index-B3xq9zLm.js", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	res, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	zr, err := gzip.NewReader(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(zr); string(got) != script2 {
		t.Errorf("after a rebuild: %.40q, want the new file", got)
	}
}

func TestWebDir(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "index.html"), []byte("<title>HoneyDo</title>"), 0o644)
	os.MkdirAll(filepath.Join(dir, "assets"), 0o755)
	os.WriteFile(filepath.Join(dir, "assets", "app.js"), []byte("console.log(1)"), 0o644)
	srv := newTestServer(t, func(c *server.Config) { c.WebDir = dir })
	for path, want := range map[string]string{
		"/":              "<title>HoneyDo</title>",
		"/list/settings": "<title>HoneyDo</title>", // client-side route
		"/assets/app.js": "console.log(1)",
	} {
		res, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || string(body) != want {
			t.Errorf("GET %s = %d %q", path, res.StatusCode, body)
		}
	}
	res, _ := http.Get(srv.URL + "/assets/missing.js")
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("missing asset: %d", res.StatusCode)
	}
	// The RPC routes still win over the static fallback.
	c := srv.realtimeClient(t, clientKinds[0], srv.Token(t, "alice", "home", time.Minute))
	if _, err := c.Ping(context.Background(), connect.NewRequest(&realtimev1.PingRequest{})); err != nil {
		t.Fatal(err)
	}
}
