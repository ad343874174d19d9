package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"

	"github.com/honeydo/realtime/internal/broker"
)

// errDraining is why a server that began shutting down is not ready.
var errDraining = errors.New("server is shutting down")

// health answers grpc.health.v1.Health and the HTTP probes from one
// source, so that they never disagree with Subscribe: the node is ready
// while its broker can serve streams and it is not shutting down. Every
// service of the server shares that answer; the node's job is streams, and
// a module's writes that emit (the shopping list's) fail without the broker too.
type health struct {
	broker   broker.Broker
	services map[string]bool
	draining <-chan struct{} // closed when Shutdown begins
}

var _ grpchealth.Watcher = (*health)(nil)

func newHealth(b broker.Broker, draining <-chan struct{}, services ...string) *health {
	h := &health{broker: b, services: make(map[string]bool, len(services)), draining: draining}
	for _, s := range services {
		h.services[s] = true
	}
	return h
}

// ready returns nil when the node can serve streams, or why it cannot.
func (h *health) ready() error {
	select {
	case <-h.draining:
		return errDraining
	default:
	}
	_, err := h.broker.Ready()
	return err
}

func (h *health) known(service string) error {
	if service != "" && !h.services[service] {
		return connect.NewError(connect.CodeNotFound, fmt.Errorf("unknown service %s", service))
	}
	return nil
}

// Check implements [grpchealth.Checker].
func (h *health) Check(_ context.Context, req *grpchealth.CheckRequest) (*grpchealth.CheckResponse, error) {
	if err := h.known(req.Service); err != nil {
		return nil, err
	}
	if h.ready() != nil {
		return &grpchealth.CheckResponse{Status: grpchealth.StatusNotServing}, nil
	}
	return &grpchealth.CheckResponse{Status: grpchealth.StatusServing}, nil
}

// Watch implements [grpchealth.Watcher]: it calls onChange whenever the
// broker's readiness may have changed and when shutdown begins, until stop.
// The handler then checks again and sends the status if it differs.
func (h *health) Watch(_ context.Context, req *grpchealth.CheckRequest, onChange func()) (stop func(), err error) {
	if err := h.known(req.Service); err != nil {
		return nil, err
	}
	// Taken before the handler's first Check, so that no change between the
	// two is missed.
	changed, _ := h.broker.Ready()
	done := make(chan struct{})
	go func() {
		draining := h.draining
		for {
			select {
			case <-changed:
				changed, _ = h.broker.Ready()
			case <-draining:
				draining = nil // closed for good: report it once
			case <-done:
				return
			}
			onChange()
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done) }) }, nil
}

// healthz is the liveness probe: the process serves HTTP.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	probeAnswer(w, http.StatusOK, "ok")
}

// readyz is the readiness probe: 200 while the node can serve streams,
// 503 with the reason while it cannot (broker unreachable, shutting down).
func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	if err := s.health.ready(); err != nil {
		probeAnswer(w, http.StatusServiceUnavailable, "not ready: "+err.Error())
		return
	}
	probeAnswer(w, http.StatusOK, "ready")
}

func probeAnswer(w http.ResponseWriter, status int, text string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(text + "\n"))
}

// endOnClose ends the requests of h (Watch streams) when the server begins
// to close: http.Server.Shutdown waits for every handler, and a Watch
// would otherwise hold it until its timeout.
func (s *Server) endOnClose(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		stop := context.AfterFunc(s.closingCtx, cancel)
		defer stop()
		h.ServeHTTP(w, r.WithContext(ctx))
	})
}
