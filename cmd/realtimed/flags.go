package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/honeydo/realtime/internal/auth"
	"github.com/honeydo/realtime/internal/broker"
	"github.com/honeydo/realtime/internal/config"
	"github.com/honeydo/realtime/internal/server"
)

// options are realtimed's flags, after the environment and the dev-mode
// defaults were applied.
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
	directStreams                bool
	maxItemsPerHousehold         int
	requestBodyTimeout           time.Duration
	maxConcurrentStreams         int
	maxHealthWatches             int
	healthWatchLifetime          time.Duration
	maxConnsPerAddr              int
	maxUnauthConnsPerAddr        int
	connLimitExempt              config.StringList
	modules                      config.StringList
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
	fs.StringVar(&o.dataDir, "data-dir", ".data", "`directory` for the modules' data (the shopping module's SQLite database) and the dev\nsigning key; created only when --dev or a module needs it")
	fs.Var(&o.modules, "modules", "comma-separated feature `modules` to serve next to RealtimeService (available: "+moduleNames()+");\nnone in production unless named here; with --dev the default is "+fmt.Sprint(devModules)+" for the web demo,\nand an empty value runs none")
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
	fs.IntVar(&o.queueSize, "queue-size", broker.DefaultQueueSize, "events a stream may fall behind before it is cut off as a slow consumer; past a quarter of it, each publish to its rooms waits for it, up to 2 ms (in-memory broker)")
	fs.DurationVar(&o.streamWriteTimeout, "stream-write-timeout", 30*time.Second, "how long one frame may wait for a client to accept it before the stream is dropped\n(a client that stopped reading, or vanished without closing); the deadline is renewed\nevery quarter of this, so a frame gets up to a quarter more, and never less than --heartbeat")
	fs.BoolVar(&o.directStreams, "direct-streams", true, "let each Subscribe stream write its own frames once its welcome is out, without Connect's\nhandler: over HTTP/1.1 it takes over its connection, leaving net/http's handler and buffers\n(an idle stream holds about an eighth of the memory and no goroutine; the connection closes\nwith the stream); over HTTP/2 its handler waits on a small stack (about 70% of the\nmemory). RPC metrics still record the stream's end; a trace span ends at the hand-off\n(false: keep streams in Connect's handlers)")
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
	registerModuleFlags(fs, o)
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
	if o.dev && !isSet(fs, "modules") {
		o.modules = append(config.StringList(nil), devModules...)
	}
	if err := checkModules(o.modules); err != nil {
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

// isSet reports whether the flag name was given, on the command line or
// (after config.ApplyEnv) in the environment.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
