// Command realtimed is the HoneyDo Realtime server: Connect, gRPC and
// gRPC-Web on one port, pushing typed events to the rooms of verified users.
// Run `realtimed --help` for its flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/honeydo/realtime/internal/auth"
	"github.com/honeydo/realtime/internal/broker"
	"github.com/honeydo/realtime/internal/config"
	"github.com/honeydo/realtime/internal/metrics"
	"github.com/honeydo/realtime/internal/server"
	"github.com/honeydo/realtime/internal/shopping"
	"github.com/honeydo/realtime/internal/version"
)

const synopsis = `realtimed — HoneyDo Realtime server.

Usage:
  realtimed --dev                 local development: no Clerk account needed
  realtimed [flags]               production: CLERK_SECRET_KEY or CLERK_JWT_KEY required
  realtimed --version             the module version and VCS revision it was built from

One port serves Connect, gRPC and gRPC-Web over HTTP/1.1 and h2c, or HTTP/2
over TLS with --tls-cert/--tls-key. Stop it with SIGINT or SIGTERM: open
streams end with UNAVAILABLE so clients reconnect, then it exits 0.
`

// envOverrides are flags whose environment variable is not REALTIMED_*:
// Clerk's own names, so one .env serves every HoneyDo service.
var envOverrides = map[string]string{
	"clerk-secret-key":         "CLERK_SECRET_KEY",
	"clerk-jwt-key":            "CLERK_JWT_KEY",
	"clerk-authorized-parties": "CLERK_AUTHORIZED_PARTIES",
	"clerk-api-url":            "CLERK_API_URL",
}

type options struct {
	addr, dataDir, webDir        string
	dev, devAllowRemote          bool
	devAllowedHosts              config.StringList
	tlsCert, tlsKey              string
	corsOrigins                  config.StringList
	clerkSecretKey, clerkJWTKey  string
	clerkIssuer, clerkAPIURL     string
	authorizedParties            config.StringList
	defaultHousehold             string
	serviceKeys                  config.StringList
	heartbeat, tokenGrace        time.Duration
	queueSize, maxStreamsPerUser int
	rateLimit                    float64
	rateBurst, readMaxBytes      int
	historyMaxAge                time.Duration
	historyMaxEvents             int
	historyMaxBytes              int64
	shutdownTimeout, drainDelay  time.Duration
	logFormat, logLevel          string
	benchAPI                     bool
	metricsAddr                  string
	streamWriteTimeout           time.Duration
	maxItemsPerHousehold         int
	requestBodyTimeout           time.Duration
	maxConcurrentStreams         int
	maxHealthWatches             int
	healthWatchLifetime          time.Duration
	maxConnsPerAddr              int
	maxUnauthConnsPerAddr        int
	connLimitExempt              config.StringList
	nats                         natsOptions
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("realtimed", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.addr, "addr", "", "`host:port` to listen on (default 127.0.0.1:8080 with --dev, :8080 otherwise)")
	fs.BoolVar(&o.dev, "dev", false, "development mode: a local signing key in --data-dir instead of Clerk, /dev/token and\n/dev/streams, the web demo; refuses a non-loopback --addr")
	fs.BoolVar(&o.devAllowRemote, "dev-allow-remote", false, "let --dev listen on a non-loopback address (anyone who reaches it can mint tokens)")
	fs.Var(&o.devAllowedHosts, "dev-allowed-hosts", "comma-separated host `names` --dev answers besides localhost, 127.0.0.1 and ::1 (ports ignored);\nany other Host header gets 403 / PermissionDenied, which stops web pages whose domain\nresolves to this machine (DNS rebinding)")
	fs.BoolVar(&o.benchAPI, "bench-api", false, "serve the benchmark control API (/bench/info, /bench/publish, /bench/gc) to loopback\ncallers, for bench/peers/run.sh and realtimectl bench; needs --dev")
	fs.StringVar(&o.dataDir, "data-dir", ".data", "`directory` for the shopping module's SQLite database and the dev signing key")
	fs.StringVar(&o.webDir, "web-dir", "", "`directory` of the built web demo to serve at / (default web/dist with --dev, if present)")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "TLS certificate `file` (PEM); with --tls-key serves HTTPS with HTTP/2 for browsers")
	fs.StringVar(&o.tlsKey, "tls-key", "", "TLS private key `file` (PEM)")
	fs.Var(&o.corsOrigins, "cors-origins", "comma-separated browser `origins` allowed to call the API, or * (default with --dev:\nthe Vite dev server, http://localhost:5173,http://127.0.0.1:5173)")
	fs.StringVar(&o.clerkSecretKey, "clerk-secret-key", "", "Clerk secret `key` (sk_...): verify session tokens against Clerk's JWKS, cached by kid")
	fs.StringVar(&o.clerkJWTKey, "clerk-jwt-key", "", "Clerk JWT public key (`PEM`, or @file): verify session tokens without network calls")
	fs.StringVar(&o.clerkIssuer, "clerk-issuer", "", "the only accepted `issuer` (iss) of Clerk tokens: your Frontend API URL, e.g.\nhttps://clerk.honeydo.example (empty: any https://clerk.* or *.clerk.accounts.* issuer)")
	fs.StringVar(&o.clerkAPIURL, "clerk-api-url", auth.DefaultAPIURL, "Clerk Backend API `URL` the JWKS is fetched from (<url>/jwks) with --clerk-secret-key")
	fs.Var(&o.authorizedParties, "clerk-authorized-parties", "comma-separated `origins` accepted in a token's azp claim, e.g. https://app.honeydo.example")
	fs.StringVar(&o.defaultHousehold, "default-household", "", "household `id` for tokens without an active Clerk organization (empty: such tokens are refused)")
	fs.Var(&o.serviceKeys, "service-keys", "comma-separated `name=key` pairs: credentials backend services use to call Publish\n(keys start with hds_ and are at least 32 characters)")
	fs.DurationVar(&o.heartbeat, "heartbeat", server.DefaultHeartbeat, "idle `interval` after which a stream gets a heartbeat; clients declare a stream dead after two silent intervals")
	fs.DurationVar(&o.tokenGrace, "token-grace", 30*time.Second, "how long a stream may outlive its token's expiry before it ends with UNAUTHENTICATED")
	fs.IntVar(&o.queueSize, "queue-size", broker.DefaultQueueSize, "events a stream may fall behind before it is cut off as a slow consumer")
	fs.DurationVar(&o.streamWriteTimeout, "stream-write-timeout", 30*time.Second, "how long one frame may wait for a client to accept it before the stream is dropped\n(a client that stopped reading, or vanished without closing)")
	fs.IntVar(&o.maxStreamsPerUser, "max-streams-per-user", 16, "concurrent Subscribe streams per user (-1: unlimited)")
	fs.Float64Var(&o.rateLimit, "rate-limit", 20, "unary calls and stream opens per second per user or service (-1: unlimited)")
	fs.IntVar(&o.rateBurst, "rate-burst", 40, "calls and stream opens a user may make at once before --rate-limit applies")
	fs.IntVar(&o.readMaxBytes, "read-max-bytes", 64<<10, "largest request message accepted, in `bytes`")
	fs.DurationVar(&o.requestBodyTimeout, "request-body-timeout", server.DefaultRequestBodyTimeout, "how long a caller may take to send its request body after its headers; a slower or\nstalled body fails the call, and a reflection session must send its requests within it\n(-1s: no limit)")
	fs.IntVar(&o.maxConcurrentStreams, "max-concurrent-streams", server.DefaultMaxConcurrentStreams, "calls in flight on one HTTP/2 connection; a browser shares one stream across its tabs,\na Go service needs tens, and clients open another connection when they need more")
	fs.IntVar(&o.maxHealthWatches, "max-health-watches", server.DefaultMaxHealthWatches, "grpc.health.v1 Watch streams open at once on this server, from all callers (Watch needs\nno credential; Check and /readyz are not limited; -1: unlimited)")
	fs.DurationVar(&o.healthWatchLifetime, "health-watch-lifetime", server.DefaultHealthWatchLifetime, "how long one health Watch stream lives before it ends with UNAVAILABLE and the client\nwatches again (-1s: no limit)")
	fs.IntVar(&o.maxConnsPerAddr, "max-conns-per-addr", server.DefaultConnsPerAddr, "connections one source address (IPv6: one /64) may hold open; a browser uses at most 6,\nso this leaves room for a household or office behind one NAT address (-1: unlimited)")
	fs.IntVar(&o.maxUnauthConnsPerAddr, "max-unauthenticated-conns-per-addr", server.DefaultUnauthenticatedConnsPerAddr, "connections one source address may hold open that have not yet made a call with a valid\ncredential (a browser's page and asset connections count until its first call; -1: unlimited)")
	o.connLimitExempt = config.StringList{"127.0.0.0/8", "::1/128"}
	fs.Var(&o.connLimitExempt, "conn-limit-exempt", "comma-separated source `prefixes` (CIDR or address) that --max-conns-per-addr and\n--max-unauthenticated-conns-per-addr do not apply to: add your load balancer's or reverse\nproxy's addresses, which carry many clients' connections (empty: none)")
	fs.DurationVar(&o.historyMaxAge, "history-max-age", 2*time.Minute, "how long events stay resumable after a disconnect; idle history is freed within this\nplus at most 1s")
	fs.IntVar(&o.historyMaxEvents, "history-max-events", 100_000, "most events kept for resumes")
	fs.Int64Var(&o.historyMaxBytes, "history-max-bytes", 64<<20, "most `bytes` of events kept for resumes: in memory, the heap history holds\n(2x each encoded event + 512 B); with --nats-url, the stream's MaxBytes")
	fs.IntVar(&o.maxItemsPerHousehold, "max-items-per-household", shopping.DefaultMaxItemsPerHousehold, "most items one household's shopping list may hold; adding more fails with\nFAILED_PRECONDITION until some are removed (-1: no cap)")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 10*time.Second, "how long to wait for handlers to finish on SIGTERM")
	fs.DurationVar(&o.drainDelay, "drain-delay", 0, "on SIGTERM, how long to keep serving with /readyz answering 503 before ending streams,\nso that load balancers stop sending new clients first (e.g. 5s behind Kubernetes)")
	fs.StringVar(&o.metricsAddr, "metrics-addr", "", "`host:port` of the admin listener serving Prometheus /metrics (empty: off);\nkeep it off the public port, e.g. 127.0.0.1:9090")
	fs.StringVar(&o.logFormat, "log-format", "text", "log `format`: text or json")
	fs.StringVar(&o.logLevel, "log-level", "info", "log `level`: debug, info, warn or error")
	o.nats.register(fs)
	fs.Usage = config.Usage(fs, synopsis, "REALTIMED_", envOverrides)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if err := config.ApplyEnv(fs, "REALTIMED_", envOverrides); err != nil {
		return nil, err
	}
	if o.addr == "" {
		o.addr = ":8080"
		if o.dev {
			o.addr = "127.0.0.1:8080"
		}
	}
	if o.dev && o.webDir == "" {
		if _, err := os.Stat(filepath.Join("web", "dist", "index.html")); err == nil {
			o.webDir = filepath.Join("web", "dist")
		}
	}
	if o.dev && len(o.corsOrigins) == 0 {
		o.corsOrigins = config.StringList{"http://localhost:5173", "http://127.0.0.1:5173"}
	}
	return o, nil
}

func main() {
	if version.Requested(os.Args[1:]) {
		version.Print(os.Stdout, "realtimed")
		return
	}
	o, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "realtimed:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "realtimed:", err)
		os.Exit(1)
	}
}

func newLogger(o *options, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	hopts := &slog.HandlerOptions{Level: level}
	switch o.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(w, hopts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, hopts)), nil
	}
	return nil, fmt.Errorf("--log-format must be text or json, not %q", o.logFormat)
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func parseServiceKeys(list []string) (map[string]string, error) {
	keys := make(map[string]string, len(list))
	for _, kv := range list {
		name, key, ok := strings.Cut(kv, "=")
		if !ok || name == "" || key == "" {
			return nil, fmt.Errorf("--service-keys: %q is not name=key", redact(kv))
		}
		keys[name] = key
	}
	return keys, nil
}

// parsePrefixes reads CIDR prefixes; a bare address stands for itself. The
// result is never nil, so that an empty list exempts no one.
func parsePrefixes(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("%q is neither an address nor a CIDR prefix", s)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// redact keeps enough of a secret to recognize it in a log.
func redact(s string) string {
	if s == "" {
		return ""
	}
	if len(s) <= 8 {
		return "***"
	}
	return s[:4] + "…(" + fmt.Sprint(len(s)) + " chars)"
}

func run(ctx context.Context, o *options, stderr io.Writer) error {
	log, err := newLogger(o, stderr)
	if err != nil {
		return err
	}
	if o.benchAPI && !o.dev {
		return errors.New("--bench-api needs --dev: the bench API floods every stream and is never served in production")
	}
	if o.maxItemsPerHousehold == 0 || o.maxItemsPerHousehold < -1 {
		return fmt.Errorf("--max-items-per-household must be positive, or -1 for no cap; got %d", o.maxItemsPerHousehold)
	}
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return errors.New("--tls-cert and --tls-key go together: give both or neither")
	}
	if o.dev && !o.devAllowRemote && !isLoopback(o.addr) {
		return fmt.Errorf("--dev refuses to listen on %s: anyone who reaches it could mint tokens; use a loopback address or add --dev-allow-remote", o.addr)
	}
	if err := os.MkdirAll(o.dataDir, 0o700); err != nil {
		return fmt.Errorf("--data-dir: %w", err)
	}
	serviceKeys, err := parseServiceKeys(o.serviceKeys)
	if err != nil {
		return err
	}
	exempt, err := parsePrefixes(o.connLimitExempt)
	if err != nil {
		return fmt.Errorf("--conn-limit-exempt: %w", err)
	}
	if o.maxHealthWatches == 0 || o.healthWatchLifetime == 0 {
		return errors.New("--max-health-watches and --health-watch-lifetime must not be 0 (use -1 for no limit)")
	}
	if o.maxConcurrentStreams < 1 {
		return errors.New("--max-concurrent-streams must be at least 1")
	}
	jwtKey := o.clerkJWTKey
	if strings.HasPrefix(jwtKey, "@") {
		b, err := os.ReadFile(jwtKey[1:])
		if err != nil {
			return fmt.Errorf("--clerk-jwt-key: %w", err)
		}
		jwtKey = string(b)
	}
	m := metrics.New()
	authCfg := auth.Config{
		OnFailure:         func(reason string) { m.AuthFailures.WithLabelValues(reason).Inc() },
		Logger:            log,
		SecretKey:         o.clerkSecretKey,
		JWTKeyPEM:         jwtKey,
		Issuer:            o.clerkIssuer,
		APIURL:            o.clerkAPIURL,
		AuthorizedParties: o.authorizedParties,
		DefaultHousehold:  o.defaultHousehold,
		ServiceKeys:       serviceKeys,
	}
	var devKey *auth.DevKey
	if o.dev {
		devKey, err = auth.LoadOrCreateDevKey(o.dataDir)
		if err != nil {
			return err
		}
		authCfg.Dev = devKey
		if authCfg.DefaultHousehold == "" {
			authCfg.DefaultHousehold = "home"
		}
	} else if o.clerkSecretKey == "" && jwtKey == "" {
		return errors.New("no way to verify tokens: set CLERK_SECRET_KEY or CLERK_JWT_KEY (or run with --dev for local development)")
	}
	verifier, err := auth.NewVerifier(authCfg)
	if err != nil {
		return err
	}

	rawBroker, err := openBroker(ctx, o, log)
	if err != nil {
		return err
	}
	defer rawBroker.Close()

	b := metrics.InstrumentBroker(rawBroker, m)

	store, err := shopping.OpenStore(ctx, filepath.Join(o.dataDir, "shopping.db"),
		shopping.WithMaxItemsPerHousehold(o.maxItemsPerHousehold))
	if err != nil {
		return err
	}
	defer store.Close()

	srv, err := server.New(server.Config{
		Broker:               b,
		Verifier:             verifier,
		Shopping:             shopping.NewService(store, broker.NewEmitter(b), log),
		CORSOrigins:          o.corsOrigins,
		Heartbeat:            o.heartbeat,
		TokenGrace:           o.tokenGrace,
		QueueSize:            o.queueSize,
		MaxStreamsPerUser:    o.maxStreamsPerUser,
		StreamWriteTimeout:   o.streamWriteTimeout,
		RateLimit:            server.RateLimit{PerSecond: o.rateLimit, Burst: o.rateBurst},
		ReadMaxBytes:         o.readMaxBytes,
		RequestBodyTimeout:   o.requestBodyTimeout,
		MaxConcurrentStreams: o.maxConcurrentStreams,
		MaxHealthWatches:     o.maxHealthWatches,
		HealthWatchLifetime:  o.healthWatchLifetime,
		ConnLimits: server.ConnLimits{
			PerAddr:                o.maxConnsPerAddr,
			UnauthenticatedPerAddr: o.maxUnauthConnsPerAddr,
			Exempt:                 exempt,
		},
		Dev:             devKey,
		DevAllowedHosts: o.devAllowedHosts,
		BenchAPI:        o.benchAPI,
		WebDir:          o.webDir,
		DrainDelay:      o.drainDelay,
		Logger:          log,
		Metrics:         m,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	scheme := "http"
	if o.tlsCert != "" {
		scheme = "https"
	}
	log.Info("realtimed starting",
		"addr", ln.Addr().String(), "url", scheme+"://"+ln.Addr().String()+"/",
		"dev", o.dev, "data_dir", o.dataDir, "web_dir", o.webDir, "tls", o.tlsCert != "",
		"cors_origins", o.corsOrigins.String(), "clerk_secret_key", redact(o.clerkSecretKey),
		"clerk_jwt_key", jwtKey != "", "clerk_issuer", o.clerkIssuer, "clerk_api_url", o.clerkAPIURL,
		"authorized_parties", o.authorizedParties.String(),
		"default_household", authCfg.DefaultHousehold, "service_keys", len(serviceKeys),
		"heartbeat", o.heartbeat, "token_grace", o.tokenGrace, "queue_size", o.queueSize,
		"max_streams_per_user", o.maxStreamsPerUser, "rate_limit", o.rateLimit,
		"max_items_per_household", o.maxItemsPerHousehold,
		"max_conns_per_addr", o.maxConnsPerAddr, "max_unauthenticated_conns_per_addr", o.maxUnauthConnsPerAddr,
		"conn_limit_exempt", o.connLimitExempt.String(),
		"history_max_age", o.historyMaxAge, "history_max_events", o.historyMaxEvents, "epoch", rawBroker.Epoch(), "metrics_addr", o.metricsAddr)
	if o.clerkIssuer == "" && (o.clerkSecretKey != "" || jwtKey != "") {
		log.Warn("no --clerk-issuer: Clerk tokens from any Clerk instance's issuer pass the issuer check " +
			"(their signature must still match your keys); set it to your Frontend API URL to pin it")
	}
	if devKey != nil {
		log.Warn("dev mode: tokens are signed by a local key; never expose this server",
			"service_key", devKey.ServiceKey(),
			"token_cmd", "realtimectl token --user alice --household home",
			"token_url", "http://"+loopbackAddr(ln.Addr())+"/dev/token?user=alice&household=home")
	}

	if o.metricsAddr != "" {
		stopMetrics, err := serveMetrics(o.metricsAddr, m, log)
		if err != nil {
			return err
		}
		defer stopMetrics()
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln, o.tlsCert, o.tlsKey) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	if o.drainDelay > 0 {
		log.Info("shutting down: not ready; draining before ending open streams", "drain_delay", o.drainDelay, "streams", srv.OpenStreams())
	} else {
		log.Info("shutting down: ending open streams", "streams", srv.OpenStreams())
	}
	start := time.Now()
	sctx, cancel := context.WithTimeout(context.Background(), o.drainDelay+o.shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Error("shutdown incomplete", "err", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("stopped", "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// serveMetrics serves Prometheus metrics on their own listener, so that the
// public port never exposes them. The returned function stops it.
func serveMetrics(addr string, m *metrics.Metrics, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener failed", "err", err)
		}
	}()
	log.Info("metrics listening", "url", "http://"+ln.Addr().String()+"/metrics")
	return func() { _ = srv.Close() }, nil
}

// loopbackAddr is addr as a browser on this machine reaches it: a wildcard
// listen address (--dev-allow-remote with ":8080") becomes 127.0.0.1, which
// dev mode's Host check accepts, where "[::]:8080" would be refused.
func loopbackAddr(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
