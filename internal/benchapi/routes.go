package benchapi

import (
	"encoding/json"
	"fmt"
	"mime"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"

	"github.com/honeydo/realtime/internal/broker"
	"github.com/honeydo/realtime/internal/devhost"
)

// Mount registers the bench routes on mux: they publish through b, and
// /bench/info reports openStreams().
func Mount(mux *http.ServeMux, b broker.Broker, openStreams func() int) {
	mux.HandleFunc("GET /bench/info", loopbackOnly(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"peer": "realtimed", "pid": os.Getpid(), "conns": openStreams()})
	}))
	mux.HandleFunc("POST /bench/gc", loopbackOnly(jsonOnly(func(w http.ResponseWriter, r *http.Request) {
		runtime.GC()
		debug.FreeOSMemory()
		writeJSON(w, map[string]any{})
	})))
	mountPprof(mux)
	mux.HandleFunc("POST /bench/publish", loopbackOnly(jsonOnly(func(w http.ResponseWriter, r *http.Request) {
		var req publishRequest
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBytes)).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if req.Size > maxSize || req.Users > maxUsers || req.Publishers > maxPublishers {
			http.Error(w, fmt.Sprintf("size is at most %d, users at most %d and publishers at most %d", maxSize, maxUsers, maxPublishers), http.StatusBadRequest)
			return
		}
		writeJSON(w, publish(r.Context(), b, req))
	})))
}

// Bounds of a bench publish: the request's size, both size allocations up
// front, and the publishers' goroutines.
const (
	maxRequestBytes = 1 << 16
	maxSize         = 1 << 20
	maxUsers        = 1_000_000
	maxPublishers   = 64
)

// loopbackOnly refuses callers that are not on this machine: the bench API
// can flood every stream and must never be reachable from outside. The Host
// must name the loopback too: a page that rebound its own domain to
// 127.0.0.1 connects from the loopback, but under its own name.
func loopbackOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() || !devhost.Allowed(r.Host, nil) {
			http.Error(w, "the bench API answers loopback callers only", http.StatusForbidden)
			return
		}
		h(w, r)
	}
}

// jsonOnly refuses POSTs that are not JSON. A web page can send a
// text/plain or form POST to any origin without a CORS preflight; a JSON
// one needs the preflight, which the CORS policy refuses.
func jsonOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
			http.Error(w, "the bench API takes application/json", http.StatusUnsupportedMediaType)
			return
		}
		h(w, r)
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}
