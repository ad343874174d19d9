package server_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/honeydo/realtime/internal/auth"
	"github.com/honeydo/realtime/internal/testkit"
	"github.com/honeydo/realtime/internal/testkit/poll"
)

// idleStreams is how many idle streams BenchmarkIdleStreamMemory holds
// open: enough that per-stream costs dwarf the server's fixed ones.
const idleStreams = 1000

// Environment of the client process of BenchmarkIdleStreamMemory.
const (
	idleClientEnv   = "REALTIME_IDLE_CLIENT" // "http1", "h2c" or "tls"
	idleURLEnv      = "REALTIME_IDLE_URL"
	idleCAEnv       = "REALTIME_IDLE_CA"     // tls: the server's certificate
	idleTokensEnv   = "REALTIME_IDLE_TOKENS" // file: one token a line
	idleSubscribe   = "/honeydo.realtime.v1.RealtimeService/Subscribe"
	idleStreamsConn = 100 // h2c streams per connection: the server's default limit
)

// BenchmarkIdleStreamMemory is bench/peers' W1 in-process: the server's
// memory per idle Subscribe stream, over one HTTP/1.1 connection per stream
// (a browser without HTTP/2), over h2c (100 streams per connection) and
// over TLS with HTTP/2, one connection per stream (a browser tab talking to
// realtimed directly).
// The streams are opened by a child process (this test binary, running
// TestIdleStreamClientProcess), so the runtime.MemStats of this process are
// the server's alone: heap in use plus goroutine stacks, after two GCs (the
// second lets the GC shrink stacks that the first found mostly unused),
// minus the same figure before the streams opened. The kernel's socket
// buffers are not in it (nor in any peer's W1 figure that matters: RSS does
// not count them either).
//
// Run with -benchtime=1x; every iteration opens and measures 1,000 streams.
func BenchmarkIdleStreamMemory(b *testing.B) {
	for _, kind := range []string{"http1", "h2c", "tls"} {
		b.Run("transport="+kind, func(b *testing.B) {
			start := testkit.StartServer
			if kind == "tls" {
				start = testkit.StartTLSServer
			}
			srv := start(b)
			tokens := mintIdleTokens(b, srv)
			var heap, stack, raw, goroutines float64
			for b.Loop() {
				h, s, r, g := measureIdleStreams(b, srv, kind, tokens)
				heap, stack, raw, goroutines = heap+h, stack+s, raw+r, goroutines+g
			}
			n := float64(b.N)
			b.ReportMetric((heap+stack)/n/1024, "KiB/stream")
			b.ReportMetric(heap/n/1024, "heap-KiB/stream")
			b.ReportMetric(stack/n/1024, "stack-KiB/stream")
			b.ReportMetric(raw/n/1024, "preGC-KiB/stream")
			b.ReportMetric(goroutines/n, "goroutines/stream")
		})
	}
}

// mintIdleTokens mints one token per stream (user i, household i/4, as the load
// generator does) into a file for the client process.
func mintIdleTokens(b *testing.B, srv *testkit.Server) string {
	b.Helper()
	var buf bytes.Buffer
	for i := range idleStreams {
		tok, _, err := srv.Key.Mint(auth.MintOptions{UserID: strconv.Itoa(i), HouseholdID: strconv.Itoa(i / 4), TTL: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		buf.WriteString(tok + "\n")
	}
	path := b.TempDir() + "/tokens"
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		b.Fatal(err)
	}
	return path
}

// measureIdleStreams returns the server's heap and stack bytes per idle
// stream after GC, heap+stack before it, and goroutines per stream.
func measureIdleStreams(b *testing.B, srv *testkit.Server, kind, tokens string) (heap, stack, raw, goroutines float64) {
	b.Helper()
	before := settledMemStats()
	g0 := runtime.NumGoroutine()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestIdleStreamClientProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), idleClientEnv+"="+kind, idleURLEnv+"="+srv.URL, idleTokensEnv+"="+tokens, idleCAEnv+"="+srv.CAFile)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		stdin.Close() // the client closes its streams and exits
		_ = cmd.Wait()
		poll.Eventually(b, time.Minute, 20*time.Millisecond, func() error {
			if n := srv.OpenStreams(); n != 0 {
				return fmt.Errorf("%d streams still open", n)
			}
			return nil
		})
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		b.Fatalf("client process: %q, %v", line, err)
	}
	poll.Eventually(b, time.Minute, 20*time.Millisecond, func() error {
		if n := srv.OpenStreams(); n != idleStreams {
			return fmt.Errorf("%d of %d streams open", n, idleStreams)
		}
		return nil
	})
	var pre runtime.MemStats
	runtime.ReadMemStats(&pre)
	after := settledMemStats()
	g := runtime.NumGoroutine() - g0
	n := float64(idleStreams)
	return float64(int64(after.HeapInuse)-int64(before.HeapInuse)) / n,
		float64(int64(after.StackInuse)-int64(before.StackInuse)) / n,
		float64(int64(pre.HeapInuse+pre.StackInuse)-int64(before.HeapInuse+before.StackInuse)) / n,
		float64(g) / n
}

func settledMemStats() runtime.MemStats {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m
}

// TestIdleStreamClientProcess is the client process of
// BenchmarkIdleStreamMemory, not a test: it opens one stream per token,
// waits for each welcome, prints "ready" and holds them until its stdin
// closes.
func TestIdleStreamClientProcess(t *testing.T) {
	kind := os.Getenv(idleClientEnv)
	if kind == "" {
		t.Skip("the client process of BenchmarkIdleStreamMemory")
	}
	raw, err := os.ReadFile(os.Getenv(idleTokensEnv))
	if err != nil {
		t.Fatal(err)
	}
	tokens := strings.Fields(string(raw))
	base := os.Getenv(idleURLEnv)
	var (
		mu      sync.Mutex
		closers []io.Closer
		clients []*http.Client
	)
	switch kind {
	case "h2c":
		for range (len(tokens) + idleStreamsConn - 1) / idleStreamsConn {
			clients = append(clients, testkit.NewSharedH2C(t, base).Client)
		}
	case "tls":
		pem, err := os.ReadFile(os.Getenv(idleCAEnv))
		if err != nil {
			t.Fatal(err)
		}
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(pem)
		p := new(http.Protocols)
		p.SetHTTP2(true)
		for range tokens { // a connection each: a transport each
			clients = append(clients, &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}, Protocols: p}})
		}
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i, tok := range tokens {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			var c io.Closer
			var err error
			switch kind {
			case "h2c":
				c, err = openIdleH2C(clients[i/idleStreamsConn], base, tok)
			case "tls":
				c, err = openIdleH2C(clients[i], base, tok)
			default:
				c, err = openIdleHTTP1(strings.TrimPrefix(base, "http://"), tok)
			}
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			closers = append(closers, c)
			mu.Unlock()
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, c := range closers {
		c.Close()
	}
}

// openIdleHTTP1 opens a stream as a browser without HTTP/2 does (one
// connection) and reads up to its welcome frame.
func openIdleHTTP1(addr, token string) (io.Closer, error) {
	conn, _, err := dialHTTP1Stream(addr, token)
	return conn, err
}

// dialHTTP1Stream opens a Subscribe stream on a connection of its own and
// reads its welcome frame; body reads the frames that follow.
func dialHTTP1Stream(addr, token string) (conn net.Conn, body io.Reader, err error) {
	conn, err = net.DialTimeout("tcp", addr, time.Minute)
	if err != nil {
		return nil, nil, err
	}
	req := "POST " + idleSubscribe + " HTTP/1.1\r\nHost: " + addr +
		"\r\nContent-Type: application/connect+proto\r\nConnect-Protocol-Version: 1\r\nContent-Length: 5\r\nAuthorization: Bearer " +
		token + "\r\n\r\n\x00\x00\x00\x00\x00"
	if _, err := io.WriteString(conn, req); err != nil {
		conn.Close()
		return nil, nil, err
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err == nil {
		err = readEnvelope(res)
	}
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, res.Body, nil
}

// openIdleH2C opens a stream on c's HTTP/2 connection (shared h2c, or TLS)
// and reads its welcome frame.
func openIdleH2C(c *http.Client, base, token string) (io.Closer, error) {
	req, err := http.NewRequest(http.MethodPost, base+idleSubscribe, bytes.NewReader(make([]byte, 5)))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/connect+proto")
	req.Header.Set("Connect-Protocol-Version", "1")
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := c.Do(req)
	if err == nil {
		err = readEnvelope(res)
	}
	if err != nil {
		return nil, err
	}
	return res.Body, nil
}

// readEnvelope reads the first message of a Connect stream's response: the
// welcome frame.
func readEnvelope(res *http.Response) error {
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("subscribe: HTTP %d", res.StatusCode)
	}
	_, err := nextEnvelope(res.Body, nil)
	return err
}

// nextEnvelope reads one Connect envelope from body into buf and returns
// its message.
func nextEnvelope(body io.Reader, buf []byte) ([]byte, error) {
	var head [5]byte
	if _, err := io.ReadFull(body, head[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint32(head[1:]))
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	_, err := io.ReadFull(body, buf)
	return buf, err
}
