package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/honeydo/realtime/internal/auth"
	"github.com/honeydo/realtime/internal/broker"
	"github.com/honeydo/realtime/internal/metrics"
	"github.com/honeydo/realtime/internal/server"
	"github.com/honeydo/realtime/internal/testkit"
	"github.com/honeydo/realtime/internal/testkit/poll"
)

// NodeConfig describes a realtimed node.
type NodeConfig struct {
	// Name labels the node's logs.
	Name string
	// NATSURL is the NATS server URL, or several comma-separated.
	NATSURL string
	// Stream and SubjectPrefix name the JetStream stream; empty means the
	// broker's defaults. Nodes of one cluster share them.
	Stream, SubjectPrefix string
	// Replicas is the stream's replication factor (default 1).
	Replicas int
	// Key is the dev key that signs and verifies tokens. Required; give
	// every node the same key so that tokens work on all of them.
	Key *auth.DevKey
	// Heartbeat is the streams' idle heartbeat; zero means the server's
	// default.
	Heartbeat time.Duration
	// BenchAPI serves the benchmark control API, as realtimed --bench-api
	// does, so that `realtimectl bench` (package loadgen) can drive the node.
	BenchAPI bool
	// Metrics, when set, receives the node's metrics, its broker's
	// publishes included, as realtimed's; nil: a private set.
	Metrics *metrics.Metrics
}

// Node is a running realtimed: the real server on the JetStream broker,
// listening on a loopback port that stays the same across Restart.
type Node struct {
	cfg    NodeConfig
	t      testing.TB
	addr   string
	Broker *broker.JetStream
	srv    *server.Server
	ln     *trackingListener
	served chan error
	up     bool
}

// StartNode starts a node on a random loopback port. It is stopped when the
// test ends.
func StartNode(t testing.TB, cfg NodeConfig) *Node {
	t.Helper()
	if cfg.Key == nil {
		t.Fatal("cluster: NodeConfig.Key is required")
	}
	n := &Node{cfg: cfg, t: t, addr: "127.0.0.1:0"}
	n.start()
	t.Cleanup(n.Stop)
	return n
}

// NewDevKey creates the dev key that a test's nodes share, as nodes started
// with --dev and one --data-dir do.
func NewDevKey(t testing.TB) *auth.DevKey {
	t.Helper()
	key, err := auth.LoadOrCreateDevKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func (n *Node) start() {
	t := n.t
	t.Helper()
	logger := testkit.Logger(t)
	if n.cfg.Name != "" {
		logger = logger.With("node", n.cfg.Name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var b *broker.JetStream
	// A fresh NATS cluster may need a moment before it can place an R3
	// stream.
	poll.Eventually(t, 20*time.Second, 100*time.Millisecond, func() error {
		var err error
		b, err = broker.NewJetStream(ctx, broker.JetStreamConfig{
			URL: n.cfg.NATSURL, Stream: n.cfg.Stream, SubjectPrefix: n.cfg.SubjectPrefix,
			Replicas: n.cfg.Replicas, Logger: logger,
		})
		return err
	})
	verifier, err := auth.NewVerifier(auth.Config{Dev: n.cfg.Key, DefaultHousehold: "home"})
	if err != nil {
		t.Fatal(err)
	}
	var served broker.Broker = b
	if n.cfg.Metrics != nil {
		served = metrics.InstrumentBroker(b, n.cfg.Metrics)
	}
	srv, err := server.New(server.Config{
		Broker:    served,
		Verifier:  verifier,
		BenchAPI:  n.cfg.BenchAPI,
		Metrics:   n.cfg.Metrics,
		Dev:       n.cfg.Key,
		Logger:    logger,
		Heartbeat: n.cfg.Heartbeat,
		RateLimit: server.RateLimit{PerSecond: -1},
		// Test clients open many streams as one user.
		MaxStreamsPerUser: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	var raw net.Listener
	poll.Eventually(t, 5*time.Second, 20*time.Millisecond, func() error {
		raw, err = net.Listen("tcp", n.addr)
		return err
	})
	n.addr = raw.Addr().String()
	n.ln = &trackingListener{Listener: raw, conns: make(map[net.Conn]struct{})}
	n.Broker, n.srv, n.served, n.up = b, srv, make(chan error, 1), true
	go func() { n.served <- srv.Serve(n.ln, "", "") }()
}

// URL is the node's base URL.
func (n *Node) URL() string { return "http://" + n.addr }

// Addr is the node's host:port.
func (n *Node) Addr() string { return n.addr }

// Stop shuts the node down gracefully, as SIGTERM does: open streams end
// with Unavailable and their clients reconnect. No-op when not running.
func (n *Node) Stop() {
	if !n.up {
		return
	}
	n.up = false
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = n.srv.Shutdown(ctx)
	n.wait()
	n.Broker.Close()
}

// Kill stops the node abruptly, as a crash or a lost machine would: every
// connection is cut mid-stream, nothing is said to clients.
func (n *Node) Kill() {
	if !n.up {
		return
	}
	n.up = false
	n.ln.Close()
	n.ln.cutAll()
	n.Broker.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = n.srv.Shutdown(ctx)
	n.wait()
}

func (n *Node) wait() {
	if err := <-n.served; err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
		n.t.Errorf("node %s: Serve: %v", n.cfg.Name, err)
	}
}

// Restart starts a stopped or killed node again on the same port, with a
// new broker instance (a new process, as far as clients can tell).
func (n *Node) Restart() {
	n.t.Helper()
	if n.up {
		n.Stop()
	}
	n.start()
}

// OpenStreams is the number of Subscribe streams the node serves.
func (n *Node) OpenStreams() int {
	if !n.up {
		return 0
	}
	return n.srv.OpenStreams()
}

// trackingListener remembers accepted connections so Kill can cut them.
type trackingListener struct {
	net.Listener
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.conns[c] = struct{}{}
	l.mu.Unlock()
	return c, nil
}

func (l *trackingListener) cutAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.conns {
		c.Close()
	}
	clear(l.conns)
}

// String names the node in test output.
func (n *Node) String() string { return fmt.Sprintf("%s(%s)", n.cfg.Name, n.addr) }
