package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"connectrpc.com/connect"
	connectcors "connectrpc.com/cors"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"
	"github.com/rs/cors"

	"github.com/honeydo/realtime/gen/honeydo/realtime/v1/realtimev1connect"
	"github.com/honeydo/realtime/internal/auth"
	"github.com/honeydo/realtime/internal/benchapi"
	"github.com/honeydo/realtime/internal/broker"
	"github.com/honeydo/realtime/internal/connwatch"
	"github.com/honeydo/realtime/internal/devapi"
	"github.com/honeydo/realtime/internal/devhost"
	"github.com/honeydo/realtime/internal/metrics"
	"github.com/honeydo/realtime/internal/module"
)

// DefaultHeartbeat is the idle interval after which a stream gets a
// heartbeat. Clients declare a stream dead after two silent intervals, so
// 4s lets them notice a frozen server or a dead network path within 8s
// (the promise is 10s); docs/RECONNECT.md has what it costs per idle
// stream. It is also far below proxies' idle timeouts.
const DefaultHeartbeat = 4 * time.Second

// Config configures a [Server]. Broker and Verifier are required; every other
// zero value means the documented default.
type Config struct {
	// Broker delivers events. Required.
	Broker broker.Broker
	// Verifier checks bearer tokens on every RPC. Required.
	Verifier *auth.Verifier
	// Modules are the feature modules to serve next to RealtimeService
	// (package module): each is mounted with the handler options of
	// RealtimeService and an emitter on Broker, and its services sit behind
	// the same credential gate. The server owns none of them: their owner
	// closes them after Shutdown.
	Modules []module.Module
	// CORSOrigins are the browser origins allowed to call the API. Empty
	// allows none (same-origin only); "*" allows any.
	CORSOrigins []string
	// Heartbeat is how long a stream may be idle before a heartbeat. Zero
	// means 4s ([DefaultHeartbeat]).
	Heartbeat time.Duration
	// TokenGrace is how long a stream outlives its token. Zero means 30s:
	// Clerk tokens live 60s and clients refresh them early, so a stream ends
	// at most 90s after its last token was issued.
	TokenGrace time.Duration
	// QueueSize bounds each stream's queue of undelivered events; overflow
	// ends the stream with ResourceExhausted. Zero means 1024.
	QueueSize int
	// StreamWriteTimeout is how long one frame's write may wait for the
	// client to accept it before the stream is dropped: at least this long
	// (and a heartbeat interval), at most a quarter longer. Zero means 30s.
	StreamWriteTimeout time.Duration
	// MaxStreamsPerUser limits concurrent Subscribe streams per user. Zero
	// means 16; negative means unlimited.
	MaxStreamsPerUser int
	// RateLimit limits unary calls and stream opens per principal.
	RateLimit RateLimit
	// ReadMaxBytes caps one request message. Zero means 64 KiB.
	ReadMaxBytes int
	// RequestBodyTimeout bounds how long any caller may take to send its
	// request body once its headers are in; a slower body fails the call.
	// Zero means 30s: a request message is at most ReadMaxBytes and
	// arrives in milliseconds on any working link, but an overloaded
	// server may take seconds to get to a body that is already on its way
	// (1,000 simultaneous resumes under the race detector on a busy
	// 2-core machine took over 10s). Negative disables it.
	RequestBodyTimeout time.Duration
	// MaxConcurrentStreams caps the calls in flight on one HTTP/2
	// connection. Zero means 100: a browser shares one stream across its
	// tabs and a Go service needs tens; more streams open more connections
	// (Go's transport does so by itself).
	MaxConcurrentStreams int
	// MaxHealthWatches caps the grpc.health.v1 Watch streams open on the
	// server at once, from all callers: Watch is public and long-lived.
	// Zero means 64 ([DefaultMaxHealthWatches]): a load balancer or
	// orchestrator watches with a few streams per node, most probe with
	// Check or /readyz, which are not limited. Negative means unlimited.
	MaxHealthWatches int
	// HealthWatchLifetime is how long one Watch stream lives before it ends
	// with UNAVAILABLE and the client watches again. Zero means 5 minutes
	// ([DefaultHealthWatchLifetime]); negative means no limit.
	HealthWatchLifetime time.Duration
	// ConnLimits is the per-source-address budget of connections.
	ConnLimits ConnLimits
	// CompressMinBytes is the smallest response message worth compressing.
	// Zero means 1 KiB: gzip costs more CPU than it saves on small frames.
	CompressMinBytes int
	// NoDirectStreams keeps Subscribe streams in their Connect handlers for
	// their whole life. By default a stream, once its welcome is written,
	// writes its own frames and Connect's handler returns (a direct
	// stream): over HTTP/1.1 it takes over its connection, which closes
	// when the stream ends; over HTTP/2 its handler waits on a small stack.
	// An idle stream then holds a fraction of the memory, but the Connect
	// interceptors see the call end at the hand-off (the RPC metrics still
	// record the stream's real end; a tracing span does not).
	NoDirectStreams bool
	// Dev, when set, enables /dev/token and /dev/streams (package devapi),
	// which mint tokens with this key. Never set it in production. A dev
	// server answers only requests whose Host is the loopback or one of
	// DevAllowedHosts (package devhost says why).
	Dev *auth.DevKey
	// DevAllowedHosts are host names (ports ignored) a dev server answers
	// besides localhost, 127.0.0.1 and ::1, e.g. the LAN name of a machine
	// running with --dev-allow-remote.
	DevAllowedHosts []string
	// BenchAPI, when set, serves the benchmark control API (/bench/info,
	// /bench/publish, /bench/gc, /bench/pprof; package benchapi) to
	// loopback callers. Dev mode only.
	BenchAPI bool
	// WebDir, when set, is served at / (static.go): gzip, long caching of
	// hashed assets, no source maps, index.html for client-side routes.
	WebDir string
	// DrainDelay is how long Shutdown keeps serving, with /readyz answering
	// 503 and health NOT_SERVING, before it ends streams and stops
	// accepting connections: time for load balancers to take the node out
	// of rotation. Zero means none.
	DrainDelay time.Duration
	// Logger receives the server's logs. Nil means slog.Default().
	Logger *slog.Logger
	// Metrics receives the stream and RPC metrics. Nil means a private set
	// that is not exported. Serve Metrics.Handler on an admin address to
	// scrape it.
	Metrics *metrics.Metrics
	// Interceptors run first, outermost first, on every RPC of
	// RealtimeService and the modules (not health or reflection), before
	// the RPC metrics and the auth interceptor: tracing, for instance
	// (internal/tracing). Nil adds none.
	Interceptors []connect.Interceptor
}

// Server is realtimed's HTTP server.
type Server struct {
	cfg      Config
	handler  http.Handler
	http     *http.Server
	realtime *realtimeService
	streams  *streamRegistry
	health   *health
	// interceptors run on every RPC of RealtimeService and the modules,
	// after Config.Interceptors and the RPC metrics: authentication, the
	// caller's origin, the rate limit.
	interceptors []connect.Interceptor
	// rpc are the routes of RealtimeService and the modules' services,
	// each behind the credential gate; services are their names.
	rpc      []Route
	services []string

	draining  chan struct{} // closed when Shutdown begins: not ready
	drainOnce sync.Once
	closing   chan struct{} // closed after DrainDelay: streams end
	closeOnce sync.Once
	// closingCtx ends with closing, for handlers that only see a context.
	closingCtx context.Context
	endClosing context.CancelFunc
}

// New builds a server from cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Broker == nil || cfg.Verifier == nil {
		return nil, errors.New("server: Config.Broker and Config.Verifier are required")
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	if cfg.TokenGrace <= 0 {
		cfg.TokenGrace = 30 * time.Second
	}
	if cfg.StreamWriteTimeout <= 0 {
		cfg.StreamWriteTimeout = 30 * time.Second
	}
	if cfg.MaxStreamsPerUser == 0 {
		cfg.MaxStreamsPerUser = 16
	}
	if cfg.ReadMaxBytes <= 0 {
		cfg.ReadMaxBytes = 64 << 10
	}
	if cfg.RequestBodyTimeout == 0 {
		cfg.RequestBodyTimeout = DefaultRequestBodyTimeout
	}
	if cfg.MaxConcurrentStreams <= 0 {
		cfg.MaxConcurrentStreams = DefaultMaxConcurrentStreams
	}
	if cfg.MaxHealthWatches == 0 {
		cfg.MaxHealthWatches = DefaultMaxHealthWatches
	}
	if cfg.HealthWatchLifetime == 0 {
		cfg.HealthWatchLifetime = DefaultHealthWatchLifetime
	}
	cfg.ConnLimits = cfg.ConnLimits.withDefaults()
	if cfg.CompressMinBytes <= 0 {
		cfg.CompressMinBytes = 1 << 10
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = metrics.New()
	}
	s := &Server{cfg: cfg, streams: newStreamRegistry(), draining: make(chan struct{}), closing: make(chan struct{})}
	s.closingCtx, s.endClosing = context.WithCancel(context.Background())
	s.realtime = &realtimeService{
		broker:  cfg.Broker,
		streams: s.streams,
		closing: s.closing,
		metrics: cfg.Metrics,
		watcher: connwatch.New(),
		runners: newRunners(s.closing),
		cfg: streamConfig{
			Heartbeat:        cfg.Heartbeat,
			TokenGrace:       cfg.TokenGrace,
			QueueSize:        cfg.QueueSize,
			MaxPerUser:       cfg.MaxStreamsPerUser,
			WriteTimeout:     cfg.StreamWriteTimeout,
			CompressMinBytes: cfg.CompressMinBytes,
			NoDirectStreams:  cfg.NoDirectStreams,
			Logger:           cfg.Logger,
		},
	}
	handler, err := s.routes()
	if err != nil {
		return nil, err
	}
	s.handler = handler
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	// Cleartext HTTP/2 with prior knowledge (h2c), as gRPC clients and
	// grpcurl -plaintext speak it, comes from net/http itself since Go 1.24;
	// golang.org/x/net/http2/h2c is deprecated in its favour.
	protocols.SetUnencryptedHTTP2(true)
	protocols.SetHTTP2(true)
	s.http = &http.Server{
		Handler:   handler,
		Protocols: protocols,
		// Streams live for minutes: no ReadTimeout or WriteTimeout, which
		// would cut them. Headers must still arrive promptly.
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
		ConnContext:       connContext,
		HTTP2: &http.HTTP2Config{
			MaxConcurrentStreams: cfg.MaxConcurrentStreams,
			// Keep-alive pings find dead peers on idle connections.
			SendPingTimeout: 30 * time.Second,
			PingTimeout:     15 * time.Second,
		},
	}
	return s, nil
}

// Handler returns the server's HTTP handler, for tests and embedding.
func (s *Server) Handler() http.Handler { return s.handler }

// OpenStreams returns the number of open Subscribe streams.
func (s *Server) OpenStreams() int {
	n, _ := s.streams.snapshot()
	return n
}

// Serve accepts connections on ln until Shutdown. With certFile and keyFile
// it serves TLS, where browsers negotiate HTTP/2. It returns
// http.ErrServerClosed after Shutdown. Connections beyond their source
// address's budget ([Config.ConnLimits]) are closed as they are accepted.
func (s *Server) Serve(ln net.Listener, certFile, keyFile string) error {
	budget := newBudgetListener(ln, s.cfg.ConnLimits, func(reason string) {
		s.cfg.Metrics.ConnsRefused.WithLabelValues(reason).Inc()
	})
	s.http.RegisterOnShutdown(budget.closeUnauthenticated)
	ln = budget
	if certFile != "" || keyFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return err
		}
		// As ServeTLS configures it; ServeTLS would hide the *tls.Conn that
		// handshakeListener needs.
		s.http.TLSConfig = &tls.Config{
			MinVersion:   tls.VersionTLS12,
			Certificates: []tls.Certificate{cert},
			NextProtos:   []string{"h2", "http/1.1"},
		}
		return s.http.Serve(handshakeListener{tls.NewListener(ln, s.http.TLSConfig)})
	}
	return s.http.Serve(ln)
}

// handshakeListener starts each TLS handshake on a goroutine of its own.
// net/http handshakes on the connection's goroutine, which with HTTP/2
// then serves the connection for its whole life: the handshake's deep
// crypto frames grew that stack to 16-32 KiB, and the GC shrinks a stack
// only while less than a quarter of it is used, so an idle browser
// connection kept it. net/http's own HandshakeContext call waits for this
// one (under the connection's handshake lock) and applies its handshake
// deadline to it, so the goroutine ends with the handshake.
type handshakeListener struct{ net.Listener }

func (l handshakeListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*tls.Conn); ok {
		go func() { _ = tc.HandshakeContext(context.Background()) }()
	}
	return c, err
}

// Shutdown marks the node not ready (/readyz 503, health NOT_SERVING) and
// keeps serving for Config.DrainDelay (or until ctx ends); then it stops
// accepting connections, ends every open stream with Unavailable so that
// clients reconnect elsewhere, and waits for handlers to return or ctx to
// end. A second call does not drain again: it ends a drain in progress.
func (s *Server) Shutdown(ctx context.Context) error {
	first := false
	s.drainOnce.Do(func() {
		close(s.draining)
		first = true
	})
	if first && s.cfg.DrainDelay > 0 {
		t := time.NewTimer(s.cfg.DrainDelay)
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	s.closeOnce.Do(func() {
		close(s.closing)
		s.endClosing()
		s.realtime.direct.shut()
	})
	err := s.http.Shutdown(ctx)
	// HTTP/1.1 direct streams have left net/http, which does not wait for
	// them.
	err = errors.Join(err, s.realtime.direct.wait(ctx))
	// Streams still running (ctx ended first) stop their watches as they
	// end, which a closed watcher allows.
	return errors.Join(err, s.realtime.watcher.Close())
}

// Route is a path pattern of [http.ServeMux] and its handler.
type Route struct {
	// Pattern is the route's path, e.g. "/honeydo.realtime.v1.RealtimeService/".
	Pattern string
	// Handler serves it.
	Handler http.Handler
}

// ServiceRoutes returns the routes of RealtimeService and of the modules'
// services, each behind the credential gate and the request body timeout,
// for an application that serves them on its own mux (the embeddable root
// package) instead of calling [Server.Serve]. Health, reflection, the dev
// endpoints and the web demo are not among them.
func (s *Server) ServiceRoutes() []Route {
	out := make([]Route, len(s.rpc))
	for i, r := range s.rpc {
		out[i] = Route{Pattern: r.Pattern, Handler: withBodyDeadline(r.Handler, s.cfg.RequestBodyTimeout)}
	}
	return out
}

// Interceptors returns the interceptors of every RPC the server serves:
// authentication (the caller in the handler's context, auth.FromContext),
// the caller's origin (for Emitter.ToOthers) and the rate limit, shared
// with RealtimeService. An embedding application puts them on its own
// Connect handlers so that one verification serves its procedures and
// ours alike.
func (s *Server) Interceptors() []connect.Interceptor {
	return append([]connect.Interceptor(nil), s.interceptors...)
}

// Services returns the fully-qualified names of the services the server
// serves: RealtimeService first, then the modules'.
func (s *Server) Services() []string { return append([]string(nil), s.services...) }

// mountServices builds the RPC routes: RealtimeService and every module,
// with the same handler options.
func (s *Server) mountServices() error {
	s.interceptors = []connect.Interceptor{
		auth.NewInterceptor(s.cfg.Verifier),
		originInterceptor{},
		rateLimitInterceptor{limiter: newRateLimiter(s.cfg.RateLimit, nil)},
	}
	// Tracing and the RPC metrics come first, so that they see the calls
	// the others refuse.
	chain := append(slices.Clip(s.cfg.Interceptors), s.cfg.Metrics.RPCInterceptor())
	opts := []connect.HandlerOption{
		connect.WithInterceptors(append(chain, s.interceptors...)...),
		connect.WithReadMaxBytes(s.cfg.ReadMaxBytes),
		connect.WithCompressMinBytes(s.cfg.CompressMinBytes),
	}
	// Every procedure of these services needs a credential: the gate
	// checks it before anything reads a request body.
	g := &gate{verifier: s.cfg.Verifier, errors: connect.NewErrorWriter(), refused: s.cfg.Metrics.RPCRefused}
	realtimePath, realtimeHandler := s.realtime.newHandler(opts...)
	s.rpc = []Route{{Pattern: realtimePath, Handler: detachable(g.wrap(realtimeHandler))}}
	s.services = []string{realtimev1connect.RealtimeServiceName}
	mounted, err := module.MountAll(module.Env{
		Emitter:        module.NewEmitter(s.cfg.Broker),
		HandlerOptions: opts[:len(opts):len(opts)],
		Logger:         s.cfg.Logger,
	}, s.cfg.Modules, realtimePath)
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	for _, m := range mounted {
		for _, svc := range m.Services {
			s.rpc = append(s.rpc, Route{Pattern: svc.Path, Handler: g.wrap(svc.Handler)})
			s.services = append(s.services, svc.Name())
		}
	}
	return nil
}

func (s *Server) routes() (http.Handler, error) {
	if err := s.mountServices(); err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	for _, r := range s.rpc {
		mux.Handle(r.Pattern, r.Handler)
	}
	services := s.services
	// Reflection and health are public: grpcurl and load balancers call them
	// without credentials, and they reveal nothing but the schema and
	// whether the node is ready. The probes are routes of their own, so the
	// web demo's page fallback never answers them.
	reflector := grpcreflect.NewStaticReflector(services...)
	mux.Handle(grpcreflect.NewHandlerV1(reflector))
	mux.Handle(grpcreflect.NewHandlerV1Alpha(reflector))
	s.health = newHealth(s.cfg.Broker, s.draining, services...)
	healthPath, healthHandler := grpchealth.NewHandler(s.health,
		connect.WithInterceptors(newWatchLimiter(s.cfg.MaxHealthWatches, s.cfg.HealthWatchLifetime)))
	mux.Handle(healthPath, s.endOnClose(healthHandler))
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	if s.cfg.Dev != nil {
		devapi.Mount(mux, s.cfg.Dev, s.streams.snapshot)
	}
	if s.cfg.BenchAPI {
		if s.cfg.Dev == nil {
			return nil, errors.New("server: the bench API needs dev mode")
		}
		benchapi.Mount(mux, s.cfg.Broker, s.OpenStreams)
	}
	if s.cfg.WebDir != "" {
		if _, err := os.Stat(filepath.Join(s.cfg.WebDir, "index.html")); err != nil {
			return nil, fmt.Errorf("server: web dir: %w (build the demo with `make web`)", err)
		}
		// "/" without a method: a "GET /" pattern would conflict with the
		// RPC routes, which are method-less and more specific.
		mux.Handle("/", newStaticFiles(s.cfg.WebDir))
	}
	handler := s.cors(withBodyDeadline(mux, s.cfg.RequestBodyTimeout))
	if s.cfg.Dev != nil {
		return devhost.Guard(handler, s.cfg.DevAllowedHosts), nil
	}
	return handler, nil
}

func (s *Server) cors(h http.Handler) http.Handler {
	if len(s.cfg.CORSOrigins) == 0 {
		return h
	}
	c := cors.New(cors.Options{
		AllowedOrigins: s.cfg.CORSOrigins,
		AllowedMethods: connectcors.AllowedMethods(),
		AllowedHeaders: append(connectcors.AllowedHeaders(), "Authorization", OriginHeader),
		ExposedHeaders: connectcors.ExposedHeaders(),
		MaxAge:         7200,
	})
	return c.Handler(h)
}
