package realtime

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"connectrpc.com/connect"
	"github.com/nats-io/nats.go"

	"github.com/honeydo/realtime/internal/auth"
	"github.com/honeydo/realtime/internal/broker"
	"github.com/honeydo/realtime/internal/module"
	"github.com/honeydo/realtime/internal/server"
)

// Options configures [New]. Every zero value means the documented default,
// as realtimed's flags do; only a way to verify tokens ([Options.Clerk] or
// [Options.Dev]) is required.
type Options struct {
	// Clerk verifies users' session tokens.
	Clerk ClerkOptions
	// DefaultHousehold is the household of a token without an active Clerk
	// organization. Empty refuses such tokens (PermissionDenied).
	DefaultHousehold string
	// ServiceKeys are the credentials of backend services (name → key):
	// services may call Publish and no user may. A key is "hds_" followed
	// by at least 32 characters of [A-Za-z0-9_-].
	ServiceKeys map[string]string
	// Dev, when set, also accepts the tokens this local key mints and its
	// service key, and makes "home" the default household if none is set:
	// for tests and local development, never in production.
	Dev *DevKey

	// NATS, when its URL is set, runs on NATS JetStream so that several
	// instances share events and history. Empty: an in-memory broker, one
	// instance.
	NATS NATSOptions
	// History bounds the events kept for clients that reconnect.
	History History

	// Modules are features served next to RealtimeService, each with its
	// own Connect services and the emitter ([Module]). New mounts them;
	// closing them stays with the caller.
	Modules []Module

	// Heartbeat is how long a stream may be idle before a heartbeat frame.
	// Zero means 4s.
	Heartbeat time.Duration
	// TokenGrace is how long a stream outlives its token's expiry before it
	// ends and the client reconnects with a fresh one. Zero means 30s.
	TokenGrace time.Duration
	// QueueSize bounds the events a stream may fall behind before it is cut
	// off (the client resumes from history). Zero means 1024.
	QueueSize int
	// MaxStreamsPerUser limits one user's open streams. Zero means 16;
	// negative means unlimited.
	MaxStreamsPerUser int
	// RateLimit limits each caller's calls and stream opens, on
	// RealtimeService, the modules and every handler that uses
	// [Realtime.Interceptor].
	RateLimit RateLimit
	// NoDirectStreams keeps Subscribe streams in Connect's handlers. By
	// default a stream, once its welcome is written, writes its own frames
	// and Connect's handler returns. Over HTTP/1.1 it hijacks its
	// connection and goes on without net/http's handler and buffers (about
	// an eighth of the memory per idle stream); the connection then closes
	// with the stream, and middleware around [Realtime.Mount]'s handlers
	// sees the call end at the hand-off. Over HTTP/2 the handler returns
	// when the stream ends, as before, on a smaller stack. Set it when such
	// middleware (an access log, a tracing wrapper) must see an HTTP/1.1
	// stream's whole life. A stream behind a ResponseWriter that cannot be
	// hijacked over HTTP/1.1 stays in its handler anyway.
	NoDirectStreams bool

	// Logger receives the service's logs. Nil means slog.Default().
	Logger *slog.Logger
}

// ClerkOptions say how to verify Clerk session tokens: with the secret key
// (the public keys are fetched from Clerk and cached) or with the PEM
// public key (no network calls). The household is the token's active
// organization.
type ClerkOptions struct {
	// SecretKey is the Clerk secret key (sk_...).
	SecretKey string
	// JWTKey is the Clerk JWT public key, in PEM.
	JWTKey string
	// Issuer, when set, is the only accepted iss: your Frontend API URL.
	Issuer string
	// APIURL is Clerk's Backend API, where the keys are fetched from with
	// SecretKey. Empty means https://api.clerk.com/v1.
	APIURL string
	// AuthorizedParties are the origins accepted in a token's azp claim,
	// e.g. "https://app.honeydo.example". Empty accepts any.
	AuthorizedParties []string
}

// NATSOptions configure the NATS JetStream broker.
type NATSOptions struct {
	// URL is the NATS server URL, or several separated by commas. Empty
	// means the in-memory broker.
	URL string
	// Options are extra connection options: credentials, TLS.
	Options []nats.Option
	// Stream names the JetStream stream, created or updated by New. Empty
	// means "HONEYDO_REALTIME".
	Stream string
	// SubjectPrefix prefixes the stream's subjects. Empty means
	// "honeydo.rt". Instances that share a stream share the prefix.
	SubjectPrefix string
	// Replicas is the stream's replication factor. Zero means 1.
	Replicas int
}

// History bounds the events kept for resumes; the first limit reached
// evicts the oldest events.
type History struct {
	// MaxAge is how long an event stays resumable. Zero means 2 minutes.
	MaxAge time.Duration
	// MaxEvents caps the events kept. Zero means 100,000.
	MaxEvents int
	// MaxBytes caps their size. Zero means 64 MiB.
	MaxBytes int64
}

// RateLimit is a per-caller token bucket.
type RateLimit struct {
	// PerSecond is the sustained rate. Zero means 20; negative disables
	// the limit.
	PerSecond float64
	// Burst is how many calls may come at once. Zero means 40.
	Burst int
}

// Realtime is the embedded service. Its methods are safe for concurrent
// use.
type Realtime struct {
	srv     *server.Server
	broker  closingBroker
	emitter *Emitter
}

// closingBroker is a broker that New opened and Close closes.
type closingBroker interface {
	broker.Broker
	broker.Closer
}

// New verifies opts, opens the broker (connecting to NATS when
// opts.NATS.URL is set, bounded by ctx) and mounts the modules.
func New(ctx context.Context, opts Options) (*Realtime, error) {
	authCfg := auth.Config{
		SecretKey:         opts.Clerk.SecretKey,
		JWTKeyPEM:         opts.Clerk.JWTKey,
		Issuer:            opts.Clerk.Issuer,
		APIURL:            opts.Clerk.APIURL,
		AuthorizedParties: opts.Clerk.AuthorizedParties,
		DefaultHousehold:  opts.DefaultHousehold,
		ServiceKeys:       opts.ServiceKeys,
		Logger:            opts.Logger,
	}
	if opts.Dev != nil {
		authCfg.Dev = opts.Dev.key
		if authCfg.DefaultHousehold == "" {
			authCfg.DefaultHousehold = "home"
		}
	} else if opts.Clerk.SecretKey == "" && opts.Clerk.JWTKey == "" {
		return nil, errors.New("realtime: no way to verify tokens: set Options.Clerk.SecretKey or JWTKey (or Options.Dev for tests)")
	}
	if authCfg.APIURL == "" {
		authCfg.APIURL = auth.DefaultAPIURL
	}
	verifier, err := auth.NewVerifier(authCfg)
	if err != nil {
		return nil, err
	}
	b, err := openBroker(ctx, opts)
	if err != nil {
		return nil, err
	}
	srv, err := server.New(server.Config{
		Broker:            b,
		Verifier:          verifier,
		Modules:           opts.Modules,
		Heartbeat:         opts.Heartbeat,
		TokenGrace:        opts.TokenGrace,
		QueueSize:         opts.QueueSize,
		MaxStreamsPerUser: opts.MaxStreamsPerUser,
		NoDirectStreams:   opts.NoDirectStreams,
		RateLimit:         server.RateLimit{PerSecond: opts.RateLimit.PerSecond, Burst: opts.RateLimit.Burst},
		Logger:            opts.Logger,
	})
	if err != nil {
		b.Close()
		return nil, err
	}
	return &Realtime{srv: srv, broker: b, emitter: module.NewEmitter(b)}, nil
}

func openBroker(ctx context.Context, opts Options) (closingBroker, error) {
	limits := broker.HistoryLimits{MaxAge: opts.History.MaxAge, MaxEvents: opts.History.MaxEvents, MaxBytes: opts.History.MaxBytes}
	if opts.NATS.URL == "" {
		return broker.NewMemory(broker.MemoryConfig{History: limits}), nil
	}
	return broker.NewJetStream(ctx, broker.JetStreamConfig{
		URL:           opts.NATS.URL,
		Options:       opts.NATS.Options,
		Stream:        opts.NATS.Stream,
		SubjectPrefix: opts.NATS.SubjectPrefix,
		Replicas:      opts.NATS.Replicas,
		History:       limits,
		Logger:        opts.Logger,
	})
}

// Mount registers RealtimeService and the modules' services on mux, each
// at its "/package.Service/" path. Every call needs a valid credential,
// which is checked before the request body is read.
func (r *Realtime) Mount(mux *http.ServeMux) {
	for _, route := range r.srv.ServiceRoutes() {
		mux.Handle(route.Pattern, route.Handler)
	}
}

// Interceptor returns the interceptor of the service's own handlers, for
// the application's Connect handlers: it verifies the caller's
// `Authorization: Bearer` credential as RealtimeService does (a failure is
// Unauthenticated, PermissionDenied or Unavailable, never reaching the
// handler), puts the caller where [Caller] finds it, records the calling
// client's origin for [Emitter.ToOthers] and applies [Options.RateLimit].
func (r *Realtime) Interceptor() connect.Interceptor {
	return chain(r.srv.Interceptors())
}

// Emitter returns the emitter that sends events to the service's streams.
func (r *Realtime) Emitter() *Emitter { return r.emitter }

// Services returns the fully-qualified names of the services Mount
// registers, for the application's reflection or health handlers.
func (r *Realtime) Services() []string { return r.srv.Services() }

// Close ends every open stream with Unavailable, so that clients
// reconnect (and resume from their cursor, on another instance with NATS),
// waits (up to 5s) for the streams to write that end, and closes the
// broker. Call it before the http.Server's Shutdown, which would otherwise
// wait for streams that never end by themselves, and which does not wait
// for HTTP/1.1 direct streams ([Options.NoDirectStreams]). Modules stay
// open: they are the caller's.
func (r *Realtime) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := r.srv.Shutdown(ctx)
	return errors.Join(err, r.broker.Close())
}

// chain runs interceptors as connect.WithInterceptors does: the first is
// the outermost.
type chain []connect.Interceptor

func (c chain) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	for i := len(c) - 1; i >= 0; i-- {
		next = c[i].WrapUnary(next)
	}
	return next
}

func (c chain) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	for i := len(c) - 1; i >= 0; i-- {
		next = c[i].WrapStreamingClient(next)
	}
	return next
}

func (c chain) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	for i := len(c) - 1; i >= 0; i-- {
		next = c[i].WrapStreamingHandler(next)
	}
	return next
}
