package benchapi

import (
	"net/http"
	"net/http/pprof"
)

// mountPprof serves the Go profiles of the server under load, to loopback
// callers, for docs/PERFORMANCE.md:
//
//	go tool pprof http://127.0.0.1:PORT/bench/pprof/profile?seconds=5
func mountPprof(mux *http.ServeMux) {
	mux.HandleFunc("GET /bench/pprof/profile", loopbackOnly(pprof.Profile))
	mux.HandleFunc("GET /bench/pprof/trace", loopbackOnly(pprof.Trace))
	mux.HandleFunc("GET /bench/pprof/{name}", loopbackOnly(func(w http.ResponseWriter, r *http.Request) {
		pprof.Handler(r.PathValue("name")).ServeHTTP(w, r)
	}))
}
