package testkit

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/honeydo/realtime/internal/auth"
	"github.com/honeydo/realtime/internal/broker"
	"github.com/honeydo/realtime/internal/devcert"
	"github.com/honeydo/realtime/internal/module"
	"github.com/honeydo/realtime/internal/server"
	"github.com/honeydo/realtime/internal/shopping"
	"github.com/honeydo/realtime/internal/testkit/poll"
)

// Server is a real realtimed server on a loopback port, set up as
// realtimed --dev is: a dev key in DataDir, an in-memory broker, and the
// shopping module on a SQLite store in DataDir.
type Server struct {
	// URL is the base URL, "http://" + Addr, or "https://" + Addr from
	// [StartTLSServer].
	URL string
	// Addr is the host:port the server listens on; Restart keeps it.
	Addr string
	// CAFile, from [StartTLSServer] only, is the PEM file a client trusts
	// the server's certificate with (realtimectl --ca-file).
	CAFile string
	// DataDir is the temporary directory holding the dev key (key files as
	// realtimed and realtimectl expect them) and the shopping store.
	DataDir string
	// Key signs dev tokens and holds the dev service key.
	Key *auth.DevKey
	// Broker is the memory broker StartServer created; the shopping
	// service and Emitter publish to it. An [Option] may give the server
	// another broker or wrap this one.
	Broker *broker.Memory
	// Emitter publishes to Broker, as the emitter modules get does (a
	// sender from an authenticated context, the origin for ToOthers).
	Emitter *module.Emitter
	// Server is the running server (after Stop, the stopped one); its
	// methods, such as OpenStreams, are promoted.
	*server.Server

	t        testing.TB
	opts     []Option
	verifier *auth.Verifier
	store    *shopping.Store
	logger   *slog.Logger
	tls      devcert.Files // the certificate to serve HTTPS with, if any
	done     chan error    // Serve's result; nil when stopped
}

// Option adjusts the server's Config after StartServer has filled it in
// (Broker, Verifier, Dev, Logger, Modules with the shopping module, and
// RateLimit PerSecond -1, no rate limit). It runs again at every
// [Server.Restart]. To add a module, append it to Config.Modules; to run
// without the shopping module, replace the list.
type Option func(*server.Config)

// StartServer starts a server on a random loopback port. It is stopped, and
// its broker and store closed, when the test ends.
func StartServer(t testing.TB, opts ...Option) *Server {
	t.Helper()
	return startServer(t, devcert.Files{}, opts)
}

// StartTLSServer is [StartServer] serving HTTPS, as realtimed --tls-cert
// does: HTTP/2 by ALPN, HTTP/1.1 otherwise. Its certificate, made for
// 127.0.0.1 by package devcert, is in [Server.CAFile].
func StartTLSServer(t testing.TB, opts ...Option) *Server {
	t.Helper()
	cert, err := devcert.Write(t.TempDir(), []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	s := startServer(t, cert, opts)
	s.CAFile = cert.Cert
	return s
}

func startServer(t testing.TB, cert devcert.Files, opts []Option) *Server {
	t.Helper()
	dir := t.TempDir()
	key, err := auth.LoadOrCreateDevKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := auth.NewVerifier(auth.Config{Dev: key, DefaultHousehold: "home"})
	if err != nil {
		t.Fatal(err)
	}
	store, err := shopping.OpenStore(context.Background(), filepath.Join(dir, "shopping.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	s := &Server{Addr: "127.0.0.1:0", DataDir: dir, Key: key, t: t, opts: opts, verifier: verifier, store: store, logger: Logger(t), tls: cert}
	s.start(broker.NewMemory(broker.MemoryConfig{}))
	t.Cleanup(func() {
		s.Stop()
		s.Broker.Close()
	})
	return s
}

// start serves with b at s.Addr.
func (s *Server) start(b *broker.Memory) {
	t := s.t
	t.Helper()
	emitter := s.Emitter
	if b != s.Broker {
		emitter = module.NewEmitter(b)
	}
	cfg := server.Config{
		Broker:    b,
		Verifier:  s.verifier,
		Modules:   []module.Module{shopping.NewModule(s.store)},
		Dev:       s.Key,
		Logger:    s.logger,
		RateLimit: server.RateLimit{PerSecond: -1},
	}
	for _, o := range s.opts {
		o(&cfg)
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// On a restart the old port is free once its listener has closed;
	// retry briefly in case the kernel is slow to let go of it.
	var ln net.Listener
	poll.Eventually(t, time.Second, 20*time.Millisecond, func() error {
		ln, err = net.Listen("tcp", s.Addr)
		return err
	})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln, s.tls.Cert, s.tls.Key) }()
	if s.URL == "" {
		s.Addr = ln.Addr().String()
		s.URL = "http://" + s.Addr
		if s.tls.Cert != "" {
			s.URL = "https://" + s.Addr
		}
	}
	if b != s.Broker {
		s.Broker, s.Emitter = b, emitter
	}
	s.Server, s.done = srv, done
}

// Stop shuts the server down, as SIGTERM does: open streams end with
// Unavailable. It is a no-op when the server is stopped; Restart starts it
// again.
func (s *Server) Stop() {
	s.t.Helper()
	if s.done == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.Server.Shutdown(ctx)
	if err := <-s.done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.t.Errorf("Serve: %v", err)
	}
	s.done = nil
}

// Restart stops the server (if running) and starts a new one at the same
// address, with the same key and store, as a restarted realtimed. With
// newBroker the memory broker is replaced: history is gone and the epoch
// changes. Without it, Broker and Emitter stay as they are, so other
// goroutines may keep publishing through them during the restart; Server
// (and with newBroker, Broker and Emitter) must not be read concurrently.
func (s *Server) Restart(newBroker bool) {
	s.t.Helper()
	s.Stop()
	b := s.Broker
	if newBroker {
		b.Close()
		b = broker.NewMemory(broker.MemoryConfig{})
	}
	s.start(b)
}

// Token mints a dev token for user in household, valid for ttl.
func (s *Server) Token(t testing.TB, user, household string, ttl time.Duration) string {
	t.Helper()
	tok, _, err := s.Key.Mint(auth.MintOptions{UserID: user, HouseholdID: household, TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
