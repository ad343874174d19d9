package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/honeydo/realtime/internal/auth"
	"github.com/honeydo/realtime/internal/broker"
	"github.com/honeydo/realtime/internal/server"
)

// testServer is realtimed --dev on a loopback port, with its dev key in
// DataDir as realtimectl expects it. It can restart at the same address.
type testServer struct {
	t       *testing.T
	DataDir string
	key     *auth.DevKey
	ver     *auth.Verifier
	opts    []func(*server.Config)
	addr    string
	URL     string

	mu   sync.Mutex
	srv  *server.Server
	b    *broker.Memory
	done chan error
}

func newTestServer(t *testing.T, opts ...func(*server.Config)) *testServer {
	t.Helper()
	dir := t.TempDir()
	key, err := auth.LoadOrCreateDevKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	ver, err := auth.NewVerifier(auth.Config{Dev: key, DefaultHousehold: "home"})
	if err != nil {
		t.Fatal(err)
	}
	s := &testServer{t: t, DataDir: dir, key: key, ver: ver, opts: opts}
	s.start(broker.NewMemory(broker.MemoryConfig{}))
	t.Cleanup(func() {
		s.stop()
		s.b.Close()
	})
	return s
}

func (s *testServer) start(b *broker.Memory) {
	s.t.Helper()
	cfg := server.Config{
		Broker: b, Verifier: s.ver, Dev: s.key,
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		RateLimit: server.RateLimit{PerSecond: -1},
	}
	for _, o := range s.opts {
		o(&cfg)
	}
	srv, err := server.New(cfg)
	if err != nil {
		s.t.Fatal(err)
	}
	addr := s.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	for i := 0; ; i++ {
		ln, err = net.Listen("tcp", addr)
		if err == nil || i == 50 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln, "", "") }()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addr, s.URL = ln.Addr().String(), "http://"+ln.Addr().String()
	s.srv, s.b, s.done = srv, b, done
}

func (s *testServer) stop() {
	s.t.Helper()
	s.mu.Lock()
	srv, done := s.srv, s.done
	s.srv = nil
	s.mu.Unlock()
	if srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(ctx)
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.t.Errorf("Serve: %v", err)
	}
}

// restart stops the server and starts it at the same address; with
// newBroker its history is gone (a new epoch).
func (s *testServer) restart(newBroker bool) {
	s.t.Helper()
	s.stop()
	b := s.b
	if newBroker {
		b.Close()
		b = broker.NewMemory(broker.MemoryConfig{})
	}
	s.start(b)
}

// token mints a dev token.
func (s *testServer) token(t *testing.T, user string, ttl time.Duration) string {
	t.Helper()
	tok, _, err := s.key.Mint(auth.MintOptions{UserID: user, HouseholdID: "home", TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// cli runs realtimectl in process and returns its output.
func cli(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out, errOut syncBuffer
	err = run(ctx, args, &out, &errOut)
	return out.String(), errOut.String(), err
}

// mustCLI is cli for calls that must succeed.
func mustCLI(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := cli(t, args...)
	if err != nil {
		t.Fatalf("realtimectl %s: %v\nstderr: %s", strings.Join(args, " "), err, errOut)
	}
	return out
}

// background is a realtimectl run in a goroutine, such as subscribe.
type background struct {
	stdout, stderr syncBuffer
	cancel         context.CancelFunc
	done           chan error
	err            error
	finished       bool
}

func cliBackground(t *testing.T, args ...string) *background {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b := &background{cancel: cancel, done: make(chan error, 1)}
	go func() { b.done <- run(ctx, args, &b.stdout, &b.stderr) }()
	t.Cleanup(func() { b.stop(t) })
	return b
}

// wait waits for the command to end on its own.
func (b *background) wait(t *testing.T) error {
	t.Helper()
	if !b.finished {
		select {
		case b.err = <-b.done:
			b.finished = true
		case <-time.After(10 * time.Second):
			t.Fatalf("realtimectl did not finish; stderr:\n%s", b.stderr.String())
		}
	}
	return b.err
}

// stop interrupts the command (Ctrl-C) and waits for it.
func (b *background) stop(t *testing.T) error {
	t.Helper()
	b.cancel()
	return b.wait(t)
}

// waitStderr waits until stderr contains want.
func (b *background) waitStderr(t *testing.T, want string) {
	t.Helper()
	checkFor(t, 10*time.Second, func() error {
		if !strings.Contains(b.stderr.String(), want) {
			return fmt.Errorf("stderr has no %q:\n%s", want, b.stderr.String())
		}
		return nil
	})
}

// waitLines waits until stdout has n lines.
func (b *background) waitLines(t *testing.T, n int) []string {
	t.Helper()
	var lines []string
	checkFor(t, 10*time.Second, func() error {
		lines = strings.Split(strings.TrimSuffix(b.stdout.String(), "\n"), "\n")
		if b.stdout.String() == "" {
			lines = nil
		}
		if len(lines) < n {
			return fmt.Errorf("%d lines on stdout, want %d; stderr:\n%s", len(lines), n, b.stderr.String())
		}
		return nil
	})
	return lines
}

func checkFor(t *testing.T, timeout time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", timeout, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkGoroutines, called first, makes the test's last cleanup wait for the
// goroutine count to return to where it started.
func checkGoroutines(t *testing.T) {
	t.Helper()
	base := runtime.NumGoroutine()
	t.Cleanup(func() {
		// By now the server is gone, so the idle connections of the
		// client package's shared transport have closed too.
		checkFor(t, 5*time.Second, func() error {
			if n := runtime.NumGoroutine(); n > base {
				return fmt.Errorf("%d goroutines, %d when the test started", n, base)
			}
			return nil
		})
	})
}
