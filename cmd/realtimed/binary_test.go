package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/honeydo/realtime/client"
	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	"github.com/honeydo/realtime/gen/honeydo/realtime/v1/realtimev1connect"
	"github.com/honeydo/realtime/internal/testkit"
	"github.com/honeydo/realtime/internal/testkit/syncbuf"
)

// These tests run the realtimed binary itself, built once per test run,
// with flags and environment as an operator would set them.

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// realtimedBinary builds cmd/realtimed (the package under test) once.
func realtimedBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "realtimed-bin-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "realtimed")
		cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", binPath, ".")
		out, err := cmd.CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// binaryProcess is a running realtimed.
type binaryProcess struct {
	// URL is the public listener, "http://127.0.0.1:port".
	URL string
	// MetricsURL is the /metrics URL when --metrics-addr was given.
	MetricsURL string
	logs       *syncbuf.Buffer
	stop       func()
}

// Stop sends SIGTERM and waits for realtimed to exit (15s at most, then
// it is killed and the test fails). The test's end does the same if Stop
// was not called.
func (p *binaryProcess) Stop() { p.stop() }

// startBinary runs realtimed with args (plus a free loopback --addr, a
// temporary --data-dir and JSON logs) and env (on top of an environment
// cleared of REALTIMED_* and CLERK_*), waits until it listens, and stops it
// with SIGTERM when the test ends.
func startBinary(t *testing.T, env []string, args ...string) *binaryProcess {
	t.Helper()
	bin := realtimedBinary(t)
	args = append([]string{"--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--log-format", "json"}, args...)
	cmd := exec.Command(bin, args...)
	cmd.Dir = t.TempDir() // no web/dist here: the demo is not served
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REALTIMED_") && !strings.HasPrefix(kv, "CLERK_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &binaryProcess{logs: &syncbuf.Buffer{}}
	started := make(chan string, 1)
	metrics := make(chan string, 1)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			p.logs.Write(append(line, '\n'))
			var rec struct{ Msg, Addr, URL string }
			if json.Unmarshal(line, &rec) != nil {
				continue
			}
			switch rec.Msg {
			case "realtimed starting":
				started <- rec.Addr
			case "metrics listening":
				metrics <- rec.URL
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	var stopOnce sync.Once
	p.stop = func() { stopOnce.Do(func() { stopProcess(t, cmd, p, readerDone) }) }
	t.Cleanup(p.Stop)
	select {
	case addr := <-started:
		p.URL = "http://" + addr
	case <-readerDone:
		t.Fatalf("realtimed exited before listening:\n%s", p.logs.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("realtimed did not start within 60s:\n%s", p.logs.String())
	}
	if slices.Contains(args, "--metrics-addr") {
		select {
		case u := <-metrics:
			p.MetricsURL = u
		case <-time.After(30 * time.Second):
			t.Fatalf("no metrics listener:\n%s", p.logs.String())
		}
	}
	return p
}

// stopProcess ends cmd with SIGTERM, as an orchestrator does, and shows
// its log if the test failed.
func stopProcess(t *testing.T, cmd *exec.Cmd, p *binaryProcess, readerDone <-chan struct{}) {
	t.Helper()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	select {
	case <-exited:
	case <-time.After(15 * time.Second):
		t.Errorf("realtimed did not stop within 15s of SIGTERM; killing it")
		_ = cmd.Process.Kill()
		<-exited
	}
	<-readerDone
	if t.Failed() {
		t.Logf("realtimed's log:\n%s", p.logs.String())
	}
}

// realtimeClient is a Connect client of p with token as its credential.
func (p *binaryProcess) realtimeClient(t *testing.T, token string) realtimev1connect.RealtimeServiceClient {
	t.Helper()
	return realtimev1connect.NewRealtimeServiceClient(testkit.HTTPClient(t, false), p.URL, client.BearerToken(token))
}

// liveStream is an open Subscribe stream whose events a goroutine reads.
type liveStream struct {
	events chan *realtimev1.Event
	done   chan error
	cancel context.CancelFunc
}

// openLiveStream subscribes and waits for the welcome frame; the stream is
// closed when the test ends.
func openLiveStream(t *testing.T, c realtimev1connect.RealtimeServiceClient) (*liveStream, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	rs, err := c.Subscribe(ctx, connect.NewRequest(&realtimev1.SubscribeRequest{}))
	if err == nil && !rs.Receive() {
		err = rs.Err()
		if err == nil {
			err = errors.New("stream ended before its welcome")
		}
	}
	if err != nil {
		cancel()
		if rs != nil {
			rs.Close()
		}
		return nil, err
	}
	if rs.Msg().GetWelcome() == nil {
		cancel()
		rs.Close()
		return nil, fmt.Errorf("first frame is %T, not a welcome", rs.Msg().GetFrame())
	}
	s := &liveStream{events: make(chan *realtimev1.Event, 64), done: make(chan error, 1), cancel: cancel}
	go func() {
		defer close(s.events)
		for rs.Receive() {
			for _, ev := range rs.Msg().GetEvents().GetEvents() {
				s.events <- ev
			}
		}
		s.done <- rs.Err()
		rs.Close()
	}()
	t.Cleanup(func() {
		s.cancel()
		for range s.events {
		}
	})
	return s, nil
}

// next waits for the stream's next event.
func (s *liveStream) next(t *testing.T) *realtimev1.Event {
	t.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			t.Fatalf("stream ended: %v", <-s.done)
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
	}
	return nil
}

// scrape returns the metric lines of p's /metrics whose name starts with
// prefix.
func (p *binaryProcess) scrape(t *testing.T, prefix string) []string {
	t.Helper()
	res, err := http.Get(p.MetricsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, prefix) {
			out = append(out, line)
		}
	}
	return out
}

// hostRewriter sends every request under another Host, as a browser does
// for a page whose domain was rebound to the server's address.
type hostRewriter struct {
	host string
	next http.RoundTripper
}

func (h hostRewriter) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Host = h.host
	return h.next.RoundTrip(r)
}

// realtimeClientWithHost is realtimeClient with every request sent under
// the Host header host.
func realtimeClientWithHost(t *testing.T, p *binaryProcess, token, host string) realtimev1connect.RealtimeServiceClient {
	t.Helper()
	hc := testkit.HTTPClient(t, false)
	hc.Transport = hostRewriter{host: host, next: hc.Transport}
	return realtimev1connect.NewRealtimeServiceClient(hc, p.URL, client.BearerToken(token))
}
