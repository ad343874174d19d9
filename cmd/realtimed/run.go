package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/honeydo/realtime/internal/auth"
	"github.com/honeydo/realtime/internal/broker"
	"github.com/honeydo/realtime/internal/metrics"
	"github.com/honeydo/realtime/internal/module"
	"github.com/honeydo/realtime/internal/server"
)

// run wires realtimed from o and serves until ctx ends, then shuts down
// gracefully. Everything it opens is closed before it returns.
func run(ctx context.Context, o *options, stderr io.Writer) error {
	log, err := newLogger(o, stderr)
	if err != nil {
		return err
	}
	c, err := checkOptions(o)
	if err != nil {
		return err
	}
	m := metrics.New()
	authCfg, devKey, err := authConfig(o, c, m, log)
	if err != nil {
		return err
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
	mods, closeModules, err := openModules(ctx, o)
	if err != nil {
		return err
	}
	defer closeModules()

	tr, err := startTracing(ctx, log)
	if err != nil {
		return err
	}
	defer flushTraces(tr, log, o.shutdownTimeout)
	cfg := serverConfig(o, c, b, verifier, devKey, mods, m, log)
	cfg.Interceptors = tr.Interceptors()
	srv, err := server.New(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	logStart(log, o, c, authCfg, ln.Addr(), rawBroker.Epoch(), devKey)
	if o.metricsAddr != "" {
		stopMetrics, err := serveMetrics(o.metricsAddr, m, log)
		if err != nil {
			_ = ln.Close()
			return err
		}
		defer stopMetrics()
	}
	return serve(ctx, srv, ln, o, log)
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

// authConfig is the token verification o asks for: Clerk, plus with --dev
// the local signing key in --data-dir (created if missing), which also
// makes "home" the default household.
func authConfig(o *options, c *checked, m *metrics.Metrics, log *slog.Logger) (auth.Config, *auth.DevKey, error) {
	cfg := auth.Config{
		OnFailure:         func(reason string) { m.AuthFailures.WithLabelValues(reason).Inc() },
		Logger:            log,
		SecretKey:         o.clerkSecretKey,
		JWTKeyPEM:         c.jwtKey,
		Issuer:            o.clerkIssuer,
		APIURL:            o.clerkAPIURL,
		AuthorizedParties: o.authorizedParties,
		DefaultHousehold:  o.defaultHousehold,
		ServiceKeys:       c.serviceKeys,
	}
	if !o.dev {
		return cfg, nil, nil
	}
	devKey, err := auth.LoadOrCreateDevKey(o.dataDir)
	if err != nil {
		return cfg, nil, err
	}
	cfg.Dev = devKey
	if cfg.DefaultHousehold == "" {
		cfg.DefaultHousehold = "home"
	}
	return cfg, devKey, nil
}

// serverConfig maps the flags onto the server's configuration.
func serverConfig(o *options, c *checked, b broker.Broker, v *auth.Verifier, devKey *auth.DevKey,
	mods []module.Module, m *metrics.Metrics, log *slog.Logger,
) server.Config {
	return server.Config{
		Broker:               b,
		Verifier:             v,
		Modules:              mods,
		CORSOrigins:          o.corsOrigins,
		Heartbeat:            o.heartbeat,
		TokenGrace:           o.tokenGrace,
		QueueSize:            o.queueSize,
		MaxStreamsPerUser:    o.maxStreamsPerUser,
		StreamWriteTimeout:   o.streamWriteTimeout,
		NoDirectStreams:      !o.directStreams,
		RateLimit:            server.RateLimit{PerSecond: o.rateLimit, Burst: o.rateBurst},
		ReadMaxBytes:         o.readMaxBytes,
		RequestBodyTimeout:   o.requestBodyTimeout,
		MaxConcurrentStreams: o.maxConcurrentStreams,
		MaxHealthWatches:     o.maxHealthWatches,
		HealthWatchLifetime:  o.healthWatchLifetime,
		ConnLimits: server.ConnLimits{
			PerAddr:                o.maxConnsPerAddr,
			UnauthenticatedPerAddr: o.maxUnauthConnsPerAddr,
			Exempt:                 c.exempt,
		},
		Dev:             devKey,
		DevAllowedHosts: o.devAllowedHosts,
		BenchAPI:        o.benchAPI,
		WebDir:          o.webDir,
		DrainDelay:      o.drainDelay,
		Logger:          log,
		Metrics:         m,
	}
}

// logStart logs the settings the server runs with (secrets redacted) and
// the warnings they deserve.
func logStart(log *slog.Logger, o *options, c *checked, authCfg auth.Config, addr net.Addr, epoch string, devKey *auth.DevKey) {
	scheme := "http"
	if o.tlsCert != "" {
		scheme = "https"
	}
	log.Info("realtimed starting",
		"addr", addr.String(), "url", scheme+"://"+addr.String()+"/",
		"dev", o.dev, "modules", o.modules.String(), "data_dir", o.dataDir, "web_dir", o.webDir, "tls", o.tlsCert != "",
		"cors_origins", o.corsOrigins.String(), "clerk_secret_key", redact(o.clerkSecretKey),
		"clerk_jwt_key", c.jwtKey != "", "clerk_issuer", o.clerkIssuer, "clerk_api_url", o.clerkAPIURL,
		"authorized_parties", o.authorizedParties.String(),
		"default_household", authCfg.DefaultHousehold, "service_keys", len(c.serviceKeys),
		"heartbeat", o.heartbeat, "token_grace", o.tokenGrace, "queue_size", o.queueSize,
		"max_streams_per_user", o.maxStreamsPerUser, "rate_limit", o.rateLimit,
		"max_items_per_household", o.maxItemsPerHousehold,
		"max_conns_per_addr", o.maxConnsPerAddr, "max_unauthenticated_conns_per_addr", o.maxUnauthConnsPerAddr,
		"conn_limit_exempt", o.connLimitExempt.String(),
		"history_max_age", o.historyMaxAge, "history_max_events", o.historyMaxEvents, "epoch", epoch, "metrics_addr", o.metricsAddr)
	if o.clerkIssuer == "" && (o.clerkSecretKey != "" || c.jwtKey != "") {
		log.Warn("no --clerk-issuer: Clerk tokens from any Clerk instance's issuer pass the issuer check " +
			"(their signature must still match your keys); set it to your Frontend API URL to pin it")
	}
	if devKey != nil {
		log.Warn("dev mode: tokens are signed by a local key; never expose this server",
			"service_key", devKey.ServiceKey(),
			"token_cmd", "realtimectl token --user alice --household home",
			"token_url", "http://"+loopbackAddr(addr)+"/dev/token?user=alice&household=home")
	}
}

// serve runs srv on ln until ctx ends, then shuts it down: streams are told
// to reconnect, after --drain-delay when set, and handlers get
// --shutdown-timeout to finish.
func serve(ctx context.Context, srv *server.Server, ln net.Listener, o *options, log *slog.Logger) error {
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
