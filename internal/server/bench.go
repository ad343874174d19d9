package server

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"mime"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"time"

	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	systemv1 "github.com/honeydo/realtime/gen/honeydo/system/v1"
	"github.com/honeydo/realtime/internal/broker"
	"github.com/honeydo/realtime/internal/room"
)

// The benchmark control API that bench/peers/run.sh drives: the same
// routes the Socket.io and Centrifuge peers expose, so that realtimed joins
// their table. It publishes through the broker exactly as modules do.

type benchPublishRequest struct {
	Mode       string  `json:"mode"` // "room" or "users"
	Room       string  `json:"room"`
	Users      int     `json:"users"`
	Rate       float64 `json:"rate"` // messages per second; 0 = as fast as accepted
	DurationMs int     `json:"duration_ms"`
	Size       int     `json:"size"`
	Batch      int     `json:"batch"`
	MaxCount   int64   `json:"max_count"`
}

type benchPublishResponse struct {
	Published int64   `json:"published"`
	Errors    int64   `json:"errors"`
	ElapsedMs float64 `json:"elapsed_ms"`
}

func (s *Server) mountBench(mux *http.ServeMux) {
	mux.HandleFunc("GET /bench/info", loopbackOnly(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"peer": "realtimed", "pid": os.Getpid(), "conns": s.OpenStreams()})
	}))
	mux.HandleFunc("POST /bench/gc", loopbackOnly(jsonOnly(func(w http.ResponseWriter, r *http.Request) {
		runtime.GC()
		debug.FreeOSMemory()
		writeJSON(w, map[string]any{})
	})))
	// Profiles of the server under load, for docs/PERFORMANCE.md:
	// go tool pprof http://127.0.0.1:PORT/bench/pprof/profile?seconds=5
	mux.HandleFunc("GET /bench/pprof/profile", loopbackOnly(pprof.Profile))
	mux.HandleFunc("GET /bench/pprof/trace", loopbackOnly(pprof.Trace))
	mux.HandleFunc("GET /bench/pprof/{name}", loopbackOnly(func(w http.ResponseWriter, r *http.Request) {
		pprof.Handler(r.PathValue("name")).ServeHTTP(w, r)
	}))
	mux.HandleFunc("POST /bench/publish", loopbackOnly(jsonOnly(func(w http.ResponseWriter, r *http.Request) {
		var req benchPublishRequest
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if req.Size > maxBenchSize || req.Users > maxBenchUsers {
			http.Error(w, fmt.Sprintf("size is at most %d and users at most %d", maxBenchSize, maxBenchUsers), http.StatusBadRequest)
			return
		}
		writeJSON(w, benchPublish(r.Context(), s.cfg.Broker, req))
	})))
}

// Bounds of a bench publish: both size allocations up front.
const (
	maxBenchSize  = 1 << 20
	maxBenchUsers = 1_000_000
)

// loopbackOnly refuses callers that are not on this machine: the bench API
// can flood every stream and must never be reachable from outside. The Host
// must name the loopback too: a page that rebound its own domain to
// 127.0.0.1 connects from the loopback, but under its own name.
func loopbackOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() || !hostAllowed(r.Host, nil) {
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

// benchPublish runs the publisher, bounded by count and deadline, with the
// peers' loops: paced publishers wake every 1 ms and send what they owe;
// rate 0 publishes batch events, then yields the processor, repeatedly.
func benchPublish(ctx context.Context, b broker.Broker, p benchPublishRequest) benchPublishResponse {
	if p.DurationMs <= 0 {
		p.DurationMs = 1000
	}
	if p.Size <= 0 {
		p.Size = 200
	}
	if p.Batch <= 0 {
		p.Batch = 1
	}
	if p.Users <= 0 {
		p.Users = 1
	}
	if p.Room == "" {
		p.Room = "bench"
	}
	dur := time.Duration(p.DurationMs) * time.Millisecond
	maxCount := p.MaxCount
	if p.Rate > 0 {
		maxCount = int64(math.Ceil(p.Rate * dur.Seconds()))
	} else if maxCount <= 0 {
		maxCount = 50_000_000
	}
	extra := room.Extra(p.Room)
	var userRooms []room.Name
	if p.Mode == "users" {
		userRooms = make([]room.Name, p.Users)
		for i := range userRooms {
			userRooms[i] = room.User(strconv.Itoa(i))
		}
	}
	// The padding makes the encoded event about p.Size bytes, as the peers'
	// JSON payloads are.
	padding := make([]byte, max(0, p.Size-40))
	var seq, errs int64
	emit := func() {
		target := extra
		if userRooms != nil {
			target = userRooms[rand.IntN(len(userRooms))]
		}
		ev := &realtimev1.Event{Payload: &realtimev1.Event_Probe{Probe: &systemv1.Probe{
			SendTimeUnixMicros: time.Now().UnixMicro(),
			Seq:                uint64(seq),
			Target:             string(target),
			Padding:            padding,
		}}}
		if _, err := b.Publish(ctx, broker.Target{Room: target}, ev); err != nil {
			errs++
		}
		seq++
	}
	start := time.Now()
	deadline := start.Add(dur)
	if p.Rate > 0 {
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			now := time.Now()
			if now.After(deadline) {
				now = deadline
			}
			due := min(int64(now.Sub(start).Seconds()*p.Rate), maxCount)
			for seq < due {
				emit()
			}
			if !now.Before(deadline) || seq >= maxCount || ctx.Err() != nil {
				break
			}
			<-tick.C
		}
	} else {
		for seq < maxCount && time.Now().Before(deadline) && ctx.Err() == nil {
			for i := 0; i < p.Batch && seq < maxCount; i++ {
				emit()
			}
			runtime.Gosched()
		}
	}
	return benchPublishResponse{Published: seq, Errors: errs, ElapsedMs: float64(time.Since(start).Microseconds()) / 1000}
}
