// Package loadgen is realtimed's load generator: the engine of
// `realtimectl bench`. It runs the workloads of bench/peers (W1 idle
// memory, W2 room fan-out, W3 maximum throughput, W4 per-user targeting)
// against a server started with --dev --bench-api, takes the same flags as
// the peers' generators and prints the same `RESULT {json}` line, so that
// run.sh tabulates realtimed beside Socket.io and Centrifuge.
//
// It is built to cost less than the server it measures: subscribers read the
// stream raw — the 5-byte envelopes of Connect or gRPC, scanned in place with
// protowire down to each event's Probe.send_time_unix_micros — with one
// goroutine and reused buffers per stream and no allocation per event. By
// default every subscriber has its own HTTP/1.1 connection, like a browser
// without HTTP/2 (the request is written and the response read by hand);
// --h2c multiplexes streams over a few cleartext HTTP/2 connections, and
// --protocol grpc speaks gRPC, which needs HTTP/2. Against an https://
// --addr every subscriber has a TLS connection of its own that negotiates
// HTTP/2 by ALPN and carries its one stream: a browser tab talking straight
// to realtimed.
//
// Concurrency: [Main] owns its run; every stream's goroutine adds to the
// run's counters and histogram with atomics only.
package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/honeydo/realtime/internal/auth"
	"github.com/honeydo/realtime/internal/clienttls"
	flagenv "github.com/honeydo/realtime/internal/config"
	"github.com/honeydo/realtime/internal/room"
)

const userAgent = "realtimectl-bench"

// workloadDefaults are the peers' sizes: subscribers, rate, duration.
var workloadDefaults = map[string]struct {
	conns      int
	rate       float64
	durationMs int
}{
	"w1": {10000, 0, 0},
	"w2": {1000, 1000, 10000},
	"w3": {100, 0, 5000},
	"w4": {5000, 5000, 10000},
}

type config struct {
	// The peers' flags (bench/peers/centrifuge/cmd/loadgen).
	transport, url, proto, workload, name, label string
	conns, durationMs, size, householdSize       int
	serverPid, concurrency, batch                int
	rate                                         float64
	connectTimeout, settle, drain, idle          time.Duration
	hardLimit                                    time.Duration
	// Ours.
	// publishURL is the server that publishes (--publish-addr, default
	// --addr); publishServerPid is its process when it is not serverPid.
	publishURL       string
	publishServerPid int
	publishers       int
	protocol         string
	h2c              bool
	streamsPerConn   int
	tls              clienttls.Flags
	// The server, from --addr: baseURL is scheme://host:port, hostport
	// has the port even when --addr left it out; https says which.
	baseURL, hostport string
	https             bool
	dataDir           string
	tokenTTL          time.Duration
	progress          time.Duration
}

// synopsis heads `realtimectl bench --help`.
const synopsis = `realtimectl bench — load generator for realtimed --dev --bench-api.

Usage:
  realtimectl bench --workload w1|w2|w3|w4 --addr http://127.0.0.1:8080 [flags]
  realtimectl bench --workload w1|w2|w3|w4 --addr https://127.0.0.1:8443 --ca-file cert.pem [flags]

It takes the flags of the peers' generators in bench/peers, but for the
server's address, which is --addr as in every realtimectl command (their
--url still works, with a warning), and prints the same RESULT {json} line,
so run.sh can tabulate it beside Socket.io and Centrifuge (see
docs/PERFORMANCE.md). Progress goes to stderr.

Over http:// every subscriber has an HTTP/1.1 connection of its own, or
with --h2c shares a cleartext HTTP/2 connection with --streams-per-conn
others. Over https:// every subscriber has a TLS connection of its own that
negotiates HTTP/2 by ALPN, as a browser tab does (RESULT tls_conns counts
them); --ca-file or --insecure-skip-verify trust a self-signed server.

Across nodes (scripts/bench-cluster.sh): subscribers on --addr, publisher
on --publish-addr, another realtimed of the same NATS JetStream cluster;
--publish-server-pid adds that node's CPU and RSS to the RESULT.
`

// envPrefix names the environment variables of the bench flags: the one
// prefix of every realtimectl flag.
const envPrefix = "REALTIMECTL_"

func parseFlags(args []string, stdout, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("realtimectl bench", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned; --help is printed below
	fs.StringVar(&c.transport, "transport", "realtimed", "accepted for compatibility with the peers' generator; ignored")
	fs.StringVar(&c.url, "addr", "http://127.0.0.1:8080", "the server's base `URL`, http:// or https:// (http:// is assumed when no scheme is given)")
	fs.StringVar(&c.proto, "proto", "protobuf", "message encoding: only protobuf (the lean reader scans binary frames)")
	fs.StringVar(&c.workload, "workload", "w2", "w1 | w2 | w3 | w4")
	fs.StringVar(&c.name, "name", "", "workload label in the RESULT line (default: --workload)")
	fs.StringVar(&c.label, "label", "", "peer label in the RESULT line (default: realtimed, realtimed-h2c, realtimed-grpc,\nrealtimed-tls or realtimed-tls-grpc)")
	fs.IntVar(&c.conns, "conns", -1, "subscribers (default per workload: w1 10000, w2 1000, w3 100, w4 5000)")
	fs.Float64Var(&c.rate, "rate", -1, "publish rate in msgs/s, 0 = as fast as the server accepts (default per workload)")
	fs.IntVar(&c.durationMs, "duration-ms", -1, "publish duration in ms (default per workload)")
	fs.IntVar(&c.size, "size", 200, "event size in bytes")
	fs.IntVar(&c.householdSize, "household-size", 4, "users per household (0 = none: the server's default household)")
	fs.IntVar(&c.serverPid, "server-pid", 0, "server `pid` (of --addr, the subscribers' server), for RSS and CPU from /proc")
	fs.StringVar(&c.publishURL, "publish-addr", "", "the publishing server's base `URL` (W2-W4: /bench/publish goes there while subscribers stay on --addr, e.g. another node of a cluster; default --addr)")
	fs.IntVar(&c.publishers, "publishers", 1, "concurrent publishers in the server sharing --rate (on NATS JetStream one publisher waits for each ack, which caps its rate)")
	fs.IntVar(&c.publishServerPid, "publish-server-pid", 0, "the --publish-addr server's `pid`, when it is another process than --server-pid: its RSS and CPU are reported beside the subscribers' server's, and their sum per delivery")
	fs.IntVar(&c.concurrency, "concurrency", 500, "connects in flight")
	fs.DurationVar(&c.connectTimeout, "connect-timeout", 180*time.Second, "deadline for the whole connect phase")
	fs.DurationVar(&c.settle, "settle", 3*time.Second, "W1: wait after connecting before reading RSS")
	fs.DurationVar(&c.drain, "drain", 30*time.Second, "longest wait for deliveries after publishing ends")
	fs.DurationVar(&c.idle, "idle", 3*time.Second, "stop draining after this long without progress")
	fs.IntVar(&c.batch, "batch", 1, "max-rate publisher: publishes per scheduler yield")
	fs.DurationVar(&c.hardLimit, "hard-limit", 10*time.Minute, "give up after this long, whatever happens")
	fs.StringVar(&c.protocol, "protocol", "connect", "connect | grpc (gRPC implies --h2c over http://)")
	fs.BoolVar(&c.h2c, "h2c", false, "http:// only: multiplex streams over cleartext HTTP/2 connections (default: one HTTP/1.1\nconnection per subscriber)")
	fs.IntVar(&c.streamsPerConn, "streams-per-conn", 100, "with --h2c: streams per HTTP/2 connection (realtimed allows 100 unless --max-concurrent-streams says otherwise)")
	c.tls.Register(fs)
	fs.StringVar(&c.dataDir, "data-dir", "", "the server's --data-dir: mint tokens locally with its dev key (default: ask GET /dev/token)")
	fs.DurationVar(&c.tokenTTL, "ttl", time.Hour, "lifetime of the subscribers' tokens")
	fs.DurationVar(&c.progress, "progress", time.Second, "progress report interval on stderr (0: none)")
	flagenv.Deprecated(fs, "url", "addr", stderr)
	flagenv.Deprecated(fs, "token-ttl", "ttl", stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			flagenv.Usage(fs, synopsis, envPrefix, nil)()
		}
		return nil, err
	}
	if err := flagenv.ApplyEnv(fs, envPrefix, nil); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	def, ok := workloadDefaults[c.workload]
	if !ok {
		return nil, fmt.Errorf("--workload must be w1, w2, w3 or w4, not %q", c.workload)
	}
	if c.conns < 0 {
		c.conns = def.conns
	}
	if c.rate < 0 {
		c.rate = def.rate
	}
	if c.durationMs < 0 {
		c.durationMs = def.durationMs
	}
	if c.name == "" {
		c.name = c.workload
	}
	if err := c.parseAddr(); err != nil {
		return nil, err
	}
	given := flagenv.Given(fs) // after ApplyEnv: the environment's count too
	if c.https {
		switch {
		case c.h2c:
			return nil, errors.New("--h2c is cleartext HTTP/2, for http:// only: over https:// every subscriber negotiates HTTP/2 by ALPN on a TLS connection of its own")
		case given["streams-per-conn"]:
			return nil, errors.New("--streams-per-conn is for --h2c only: over https:// every subscriber has a TLS connection of its own, with one stream")
		}
	}
	switch c.protocol {
	case "connect":
	case "grpc":
		c.h2c = !c.https // gRPC needs HTTP/2: h2c over http://, ALPN over https://
	default:
		return nil, fmt.Errorf("--protocol must be connect or grpc, not %q", c.protocol)
	}
	if c.proto != "protobuf" {
		return nil, fmt.Errorf("--proto %q: only protobuf is supported", c.proto)
	}
	if c.label == "" {
		c.label = "realtimed"
		switch {
		case c.https && c.protocol == "grpc":
			c.label = "realtimed-tls-grpc"
		case c.https:
			c.label = "realtimed-tls"
		case c.protocol == "grpc":
			c.label = "realtimed-grpc"
		case c.h2c:
			c.label = "realtimed-h2c"
		}
	}
	if c.publishServerPid == c.serverPid {
		c.publishServerPid = 0 // one process: its figures are the server's
	}
	if c.concurrency < 1 || c.streamsPerConn < 1 || c.batch < 1 || c.publishers < 1 {
		return nil, errors.New("--concurrency, --streams-per-conn, --batch and --publishers must be at least 1")
	}
	return c, nil
}

// parseAddr fills in baseURL, hostport and https from --addr, and
// publishURL from --publish-addr (default: --addr), and checks the TLS
// flags against them.
func (c *config) parseAddr() error {
	u, err := serverURL("--addr", c.url)
	if err != nil {
		return err
	}
	c.https = u.Scheme == "https"
	c.baseURL = u.Scheme + "://" + u.Host
	c.hostport = u.Host
	if u.Port() == "" {
		port := "80"
		if c.https {
			port = "443"
		}
		c.hostport = net.JoinHostPort(u.Hostname(), port)
	}
	if c.publishURL == "" {
		c.publishURL = c.baseURL
	} else {
		pu, err := serverURL("--publish-addr", c.publishURL)
		if err != nil {
			return err
		}
		if pu.Scheme != u.Scheme {
			return fmt.Errorf("--publish-addr %s and --addr %s: use one scheme for both (the TLS flags apply to both)", c.publishURL, c.url)
		}
		c.publishURL = pu.Scheme + "://" + pu.Host
	}
	return c.tls.Check(c.baseURL)
}

// run is one execution of a workload.
type run struct {
	cfg      *config
	stderr   io.Writer
	baseURL  string // the subscribers' server
	hostport string
	// publishURL is the server /bench/publish goes to: baseURL, or another
	// node with --publish-addr.
	publishURL string
	// http1Head is the HTTP/1.1 request up to the token.
	http1Head string
	clients   []*http.Client // h2c: one per connection
	// control makes the calls that are not subscribers' streams: tokens
	// and the bench API. Over TLS it pools its connections apart from the
	// subscribers'.
	control *http.Client
	// tlsTransport opens the subscribers' TLS connections, one per
	// NewClientConn; it never pools them. tlsConns counts the handshakes
	// that negotiated HTTP/2.
	tlsTransport *http.Transport
	tlsConns     atomic.Int64

	hist        *hist
	received    atomic.Int64 // probe events
	events      atomic.Int64 // all events
	frames      atomic.Int64 // events frames
	lastRecvUs  atomic.Int64
	disconnects atomic.Int64
	errMu       sync.Mutex
	lastErr     string
}

func (r *run) noteError(err error) {
	r.errMu.Lock()
	r.lastErr = err.Error()
	r.errMu.Unlock()
}

// Main runs `realtimectl bench`: it parses args (the flags above), runs the
// workload and writes `RESULT {json}` to stdout and progress to stderr. It
// returns flag.ErrHelp for -h, and an error when the run could not complete.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, stdout, stderr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.hardLimit)
	defer cancel()
	r := &run{cfg: cfg, stderr: stderr, baseURL: cfg.baseURL, hostport: cfg.hostport, hist: new(hist),
		publishURL: cfg.publishURL, control: http.DefaultClient}
	if cfg.https {
		if err := r.setupTLS(); err != nil {
			return err
		}
		defer r.control.CloseIdleConnections()
	}
	r.http1Head = "POST " + subscribePath + " HTTP/1.1\r\nHost: " + cfg.hostport +
		"\r\nUser-Agent: " + userAgent +
		"\r\nContent-Type: application/connect+proto\r\nConnect-Protocol-Version: 1\r\nContent-Length: " +
		strconv.Itoa(len(emptyRequest)) + "\r\nAuthorization: Bearer "
	out, err := r.execute(ctx)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("hard time limit (%s) hit: %w", cfg.hardLimit, err)
		}
		return clienttls.Explain(err)
	}
	b, err := json.Marshal(out)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, "RESULT "+string(b))
	return err
}

// serverURL parses a server address flag: http:// or https://, the scheme
// assumed http:// when absent, no path.
func serverURL(flagName, addr string) (*url.URL, error) {
	base, err := flagenv.ServerURL(addr)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(base)
	if err != nil || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return nil, fmt.Errorf("%s %q: want http://host:port or https://host:port", flagName, addr)
	}
	return u, nil
}

func (r *run) logf(format string, args ...any) {
	fmt.Fprintf(r.stderr, "bench: "+format+"\n", args...)
}

// execute follows the peers' sequence: tokens, connect, then W1's RSS
// readings or publish-and-drain.
func (r *run) execute(ctx context.Context) (*result, error) {
	cfg := r.cfg
	out := &result{Peer: cfg.label, Workload: cfg.name, Conns: cfg.conns, Size: cfg.size,
		Rate: cfg.rate, DurationMs: cfg.durationMs, Protocol: cfg.protocol, H2C: cfg.h2c,
		Addr: r.baseURL, PublishAddr: r.publishURL, CrossNode: r.publishURL != r.baseURL}

	tokens, err := r.tokens(ctx)
	if err != nil {
		return nil, err
	}
	if cfg.h2c {
		if err := r.dialH2C(ctx); err != nil {
			return nil, err
		}
		out.StreamsPerConn = cfg.streamsPerConn
		out.H2CConns = len(r.clients)
	}
	var phase atomic.Value
	phase.Store("connect")
	var okN, failN atomic.Int64
	stopProgress := r.startProgress(&phase, &okN, &failN)
	defer stopProgress()

	if cfg.workload == "w1" {
		_, _ = r.post(ctx, r.baseURL, "/bench/gc", map[string]any{}, 30*time.Second)
		sleep(ctx, 500*time.Millisecond)
	}
	rssBefore := rssBytes(cfg.serverPid)

	var loops sync.WaitGroup // one reader per stream; Main returns after all
	var streams []*stream
	defer func() {
		for _, s := range streams {
			s.shut()
		}
		loops.Wait()
		for _, c := range r.clients {
			c.CloseIdleConnections()
		}
	}()
	streams = r.connect(ctx, tokens, out, &loops, &okN, &failN)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if cfg.workload == "w1" {
		phase.Store("settle")
		out.idleResult = r.measureIdle(ctx, rssBefore, out.Connected)
		out.Disconnects = r.disconnects.Load()
		return out, ctx.Err()
	}
	d, err := r.measureDelivery(ctx, &phase, out.Connected)
	if err != nil {
		return nil, err
	}
	out.deliveryResult = d
	out.Disconnects = r.disconnects.Load()
	return out, ctx.Err()
}

// connect opens cfg.conns streams with bounded concurrency within
// --connect-timeout, starts each one's reader in loops, and fills in the
// connect figures of out. It returns the streams that opened.
func (r *run) connect(ctx context.Context, tokens []string, out *result, loops *sync.WaitGroup, okN, failN *atomic.Int64) []*stream {
	cfg := r.cfg
	cs0, cm0 := cpuSeconds(cfg.serverPid), cpuSeconds(os.Getpid())
	t0 := time.Now()
	connectCtx, connectCancel := context.WithTimeout(ctx, cfg.connectTimeout)
	defer connectCancel()
	var next atomic.Int64
	var mu sync.Mutex
	streams := make([]*stream, 0, cfg.conns)
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range min(cfg.concurrency, cfg.conns) {
		wg.Go(func() {
			for connectCtx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= cfg.conns {
					return
				}
				var s *stream
				var err error
				// An HTTP/2 stream outlives the connect phase: it takes the
				// run's context.
				switch {
				case cfg.h2c:
					s, err = r.openH2(ctx, r.clients[i/cfg.streamsPerConn].Transport, tokens[i], 20*time.Second, nil)
				case cfg.https:
					s, err = r.openTLS(ctx, tokens[i], 20*time.Second)
				default:
					s, err = r.openHTTP1(connectCtx, tokens[i], 20*time.Second)
				}
				if err != nil {
					failN.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				okN.Add(1)
				mu.Lock()
				streams = append(streams, s)
				mu.Unlock()
				loops.Go(s.loop)
			}
		})
	}
	wg.Wait()
	connectS := time.Since(t0).Seconds()
	out.Connected = okN.Load()
	out.ConnectFailed = failN.Load() + int64(cfg.conns) - min(int64(cfg.conns), next.Load())
	if e := firstErr.Load(); e != nil {
		out.ConnectFirstError = e.(string)
	}
	out.ConnectS = connectS
	if cfg.https {
		out.TLSConns = new(r.tlsConns.Load())
	}
	out.ConnectServerCPUPct = measure(100 * (cpuSeconds(cfg.serverPid) - cs0) / connectS)
	out.ConnectClientCPUPct = measure(100 * (cpuSeconds(os.Getpid()) - cm0) / connectS)
	return streams
}

// measureIdle is W1: the server's RSS once the connected streams have
// settled, and again after a GC, against rssBefore.
func (r *run) measureIdle(ctx context.Context, rssBefore float64, connected int64) *idleResult {
	spid := r.cfg.serverPid
	sleep(ctx, r.cfg.settle)
	rssAfter := rssBytes(spid)
	_, _ = r.post(ctx, r.baseURL, "/bench/gc", map[string]any{}, 30*time.Second)
	sleep(ctx, time.Second)
	rssAfterGC := rssBytes(spid)
	n := math.Max(1, float64(connected))
	return &idleResult{
		RSSBefore:      measure(rssBefore),
		RSSAfter:       measure(rssAfter),
		RSSAfterGC:     measure(rssAfterGC),
		BytesPerConn:   measure(math.Round((rssAfter - rssBefore) / n)),
		BytesPerConnGC: measure(math.Round((rssAfterGC - rssBefore) / n)),
		ClientRSS:      measure(rssBytes(os.Getpid())),
	}
}

// measureDelivery has the server publish (/bench/publish) and waits for
// the deliveries, up to --drain or --idle without progress.
func (r *run) measureDelivery(ctx context.Context, phase *atomic.Value, connected int64) (*deliveryResult, error) {
	cfg := r.cfg
	spid, ppid, mypid := cfg.serverPid, cfg.publishServerPid, os.Getpid()
	sleep(ctx, time.Second)
	body := map[string]any{"mode": "room", "room": "bench", "rate": cfg.rate, "duration_ms": cfg.durationMs,
		"size": cfg.size, "batch": cfg.batch}
	if cfg.workload == "w4" {
		body = map[string]any{"mode": "users", "users": cfg.conns, "rate": cfg.rate, "duration_ms": cfg.durationMs, "size": cfg.size}
	}
	if cfg.publishers > 1 {
		body["publishers"] = cfg.publishers
	}
	r.disconnects.Store(0)
	r.received.Store(0)
	r.events.Store(0)
	r.frames.Store(0)
	phase.Store("publish")
	s0, p0, m0 := cpuSeconds(spid), cpuSeconds(ppid), cpuSeconds(mypid)
	pubStart := time.Now().UnixMicro()
	stopRSS, stopPubRSS := r.watchPeakRSS(spid), r.watchPeakRSS(ppid)
	pub, err := r.post(ctx, r.publishURL, "/bench/publish", body, time.Duration(cfg.durationMs)*time.Millisecond+2*time.Minute)
	if err != nil {
		stopRSS()
		stopPubRSS()
		return nil, fmt.Errorf("publish: %w", err)
	}
	pubEnd := time.Now().UnixMicro()
	published := int64(num(pub["published"]))
	expected := published * connected
	if cfg.workload == "w4" {
		expected = published
	}
	phase.Store("drain")
	lastSeen, lastProgress, drainStart := r.received.Load(), time.Now(), time.Now()
	for r.received.Load() < expected && time.Since(drainStart) < cfg.drain && ctx.Err() == nil {
		sleep(ctx, 100*time.Millisecond)
		if n := r.received.Load(); n != lastSeen {
			lastSeen, lastProgress = n, time.Now()
		} else if time.Since(lastProgress) > cfg.idle {
			break
		}
	}
	rssPeak, pubRSSPeak := stopRSS(), stopPubRSS()
	s1, p1, m1 := cpuSeconds(spid), cpuSeconds(ppid), cpuSeconds(mypid)
	activeS := float64(max(pubEnd, r.lastRecvUs.Load())-pubStart) / 1e6
	rcv := r.received.Load()
	d := &deliveryResult{
		Published:      published,
		PublishErrors:  num(pub["errors"]),
		PublishS:       num(pub["elapsed_ms"]) / 1000,
		PublishRate:    measure(float64(published) / (num(pub["elapsed_ms"]) / 1000)),
		Expected:       expected,
		Received:       rcv,
		Lost:           expected - rcv,
		DeliveriesPerS: measure(float64(rcv) / activeS),
		ActiveS:        activeS,
		P50Ms:          measure(r.hist.quantile(0.5)),
		P99Ms:          measure(r.hist.quantile(0.99)),
		MaxMs:          measure(r.hist.maxMs()),
		ServerCPUPct:   measure(100 * (s1 - s0) / activeS),
		ClientCPUPct:   measure(100 * (m1 - m0) / activeS),
		ServerRSSPeak:  rssPeak,
		Frames:         r.frames.Load(),
	}
	if cfg.publishers > 1 {
		d.Publishers = cfg.publishers
	}
	if d.Frames > 0 {
		d.EventsPerFrame = float64(r.events.Load()) / float64(d.Frames)
	}
	if rcv > 0 {
		d.ServerUsPerDelivery = measurePtr(1e6 * (s1 - s0) / float64(rcv))
		d.ClientUsPerDelivery = measurePtr(1e6 * (m1 - m0) / float64(rcv))
	}
	if ppid > 0 {
		// Publisher and subscribers on two processes (two nodes of a
		// cluster): the publishing node's share, and both nodes' sum, to
		// set beside one node's server_us_per_delivery.
		p := &publishServerResult{PublishServerCPUPct: measure(100 * (p1 - p0) / activeS), PublishServerRSSPeak: pubRSSPeak}
		if rcv > 0 {
			p.PublishServerUsPerDelivery = measurePtr(1e6 * (p1 - p0) / float64(rcv))
			p.ServersUsPerDelivery = measurePtr(1e6 * (s1 - s0 + p1 - p0) / float64(rcv))
		}
		d.publishServerResult = p
	}
	r.errMu.Lock()
	d.DisconnectLastError = r.lastErr
	r.errMu.Unlock()
	return d, nil
}

// watchPeakRSS samples pid's RSS every 200 ms until the returned stop,
// which returns the peak (0 for no pid).
func (r *run) watchPeakRSS(pid int) (stop func() int64) {
	var peak atomic.Int64
	if pid <= 0 {
		return peak.Load
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tk := time.NewTicker(200 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-done:
				return
			case <-tk.C:
				if v := rssBytes(pid); !math.IsNaN(v) && int64(v) > peak.Load() {
					peak.Store(int64(v))
				}
			}
		}
	}()
	return func() int64 {
		close(done)
		<-finished
		return peak.Load()
	}
}

// startProgress reports on stderr every cfg.progress until stopped.
func (r *run) startProgress(phase *atomic.Value, okN, failN *atomic.Int64) (stop func()) {
	if r.cfg.progress <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tk := time.NewTicker(r.cfg.progress)
		defer tk.Stop()
		start, last := time.Now(), int64(0)
		for {
			select {
			case <-done:
				return
			case <-tk.C:
			}
			rcv := r.received.Load()
			r.logf("%6.1fs %-8s connected %d/%d (failed %d)  received %d (+%d/s)  disconnects %d",
				time.Since(start).Seconds(), phase.Load(), okN.Load(), r.cfg.conns, failN.Load(),
				rcv, int64(float64(rcv-last)/r.cfg.progress.Seconds()), r.disconnects.Load())
			last = rcv
		}
	}()
	return func() { close(done); <-finished }
}

// dialH2C makes one client per streams-per-conn subscribers and opens its
// connection before the connect phase, so that concurrent streams share
// it instead of racing to dial their own.
func (r *run) dialH2C(ctx context.Context) error {
	n := (r.cfg.conns + r.cfg.streamsPerConn - 1) / r.cfg.streamsPerConn
	for range max(n, 1) {
		p := new(http.Protocols)
		p.SetUnencryptedHTTP2(true)
		tr := &http.Transport{
			Protocols:          p,
			DisableCompression: true,
			DialContext:        (&net.Dialer{Timeout: 20 * time.Second}).DialContext,
		}
		c := &http.Client{Transport: tr}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.baseURL+"/bench/info", nil)
		if err != nil {
			return err
		}
		res, err := c.Do(req)
		if err != nil {
			return fmt.Errorf("h2c: %w", err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.ProtoMajor != 2 {
			return fmt.Errorf("h2c: the server answered with %s", res.Proto)
		}
		r.clients = append(r.clients, c)
	}
	return nil
}

// tokens returns one dev token per subscriber: user i, household
// floor(i / household-size), plus room:bench for W2 and W3. With --data-dir
// they are minted here with the server's dev key; otherwise the server's
// /dev/token mints them.
func (r *run) tokens(ctx context.Context) ([]string, error) {
	cfg := r.cfg
	var rooms []string
	if cfg.workload == "w2" || cfg.workload == "w3" {
		rooms = []string{string(room.Extra("bench"))}
	}
	household := func(i int) string {
		if cfg.householdSize > 0 {
			return strconv.Itoa(i / cfg.householdSize)
		}
		return ""
	}
	var key *auth.DevKey
	if cfg.dataDir != "" {
		// Load, never create: a new key would sign tokens the server rejects.
		if _, err := os.Stat(filepath.Join(cfg.dataDir, auth.DevKeyFile)); err != nil {
			return nil, fmt.Errorf("--data-dir: no dev key: %w (start the server with --dev --data-dir %s first)", err, cfg.dataDir)
		}
		var err error
		if key, err = auth.LoadOrCreateDevKey(cfg.dataDir); err != nil {
			return nil, err
		}
	}
	t0 := time.Now()
	tokens := make([]string, cfg.conns)
	var next atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	workers := 8
	if key != nil {
		workers = 2
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: r.control.Transport}
	for range min(workers, cfg.conns) {
		wg.Go(func() {
			for ctx.Err() == nil && firstErr.Load() == nil {
				i := int(next.Add(1) - 1)
				if i >= cfg.conns {
					return
				}
				var err error
				if key != nil {
					tokens[i], _, err = key.Mint(auth.MintOptions{UserID: strconv.Itoa(i), HouseholdID: household(i), TTL: cfg.tokenTTL, ExtraRooms: rooms})
				} else {
					tokens[i], err = r.devToken(ctx, client, strconv.Itoa(i), household(i), rooms)
				}
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
				}
			}
		})
	}
	wg.Wait()
	if e := firstErr.Load(); e != nil {
		return nil, fmt.Errorf("tokens: %w", e.(error))
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if d := time.Since(t0); d > time.Second {
		r.logf("minted %d tokens in %s", cfg.conns, d.Round(time.Millisecond))
	}
	return tokens, nil
}

func (r *run) devToken(ctx context.Context, client *http.Client, user, household string, rooms []string) (string, error) {
	q := url.Values{"user": {user}, "ttl": {r.cfg.tokenTTL.String()}}
	if household != "" {
		q.Set("household", household)
	}
	for _, room := range rooms {
		q.Add("rooms", room)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.baseURL+"/dev/token?"+q.Encode(), nil)
	if err != nil {
		return "", err
	}
	res, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("/dev/token: HTTP %d: %s", res.StatusCode, b)
	}
	var tok struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(b, &tok); err != nil || tok.Token == "" {
		return "", fmt.Errorf("/dev/token: bad reply %.200s", b)
	}
	return tok.Token, nil
}

// post sends body as JSON to base+path (base: baseURL or publishURL).
func (r *run) post(ctx context.Context, base, path string, body any, timeout time.Duration) (map[string]any, error) {
	b, _ := json.Marshal(body)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := r.control.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	rb, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: HTTP %d: %s", path, res.StatusCode, rb)
	}
	var m map[string]any
	if len(rb) > 0 {
		if err := json.Unmarshal(rb, &m); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func num(v any) float64 {
	f, _ := v.(float64)
	return f
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
