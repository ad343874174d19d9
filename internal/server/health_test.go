package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"

	"github.com/honeydo/realtime/gen/honeydo/realtime/v1/realtimev1connect"
	"github.com/honeydo/realtime/internal/broker"
	"github.com/honeydo/realtime/internal/server"
	"github.com/honeydo/realtime/internal/testkit"
	"github.com/honeydo/realtime/internal/testkit/natstest"
	"github.com/honeydo/realtime/internal/testkit/poll"
)

// probe GETs path and returns the status code and body.
func probe(t *testing.T, hc *http.Client, url string) (int, string, error) {
	t.Helper()
	res, err := hc.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	return res.StatusCode, string(body), err
}

// nodeState is what every way of asking a node about its readiness answers.
type nodeState struct {
	check     map[string]grpchealth.Status // by service ("" is the server)
	readyz    int
	readyBody string
	healthz   int
	subscribe connect.Code // 0: the stream opened
}

func (st nodeState) String() string {
	return fmt.Sprintf("check %v, /readyz %d %q, /healthz %d, Subscribe %v", st.check, st.readyz, st.readyBody, st.healthz, st.subscribe)
}

// observe asks the node every way at once.
func observe(t *testing.T, srv *testServer, hc *http.Client, health *grpchealth.Client, rt realtimev1connect.RealtimeServiceClient) (nodeState, error) {
	t.Helper()
	st := nodeState{check: map[string]grpchealth.Status{}}
	for _, svc := range []string{"", realtimev1connect.RealtimeServiceName} {
		res, err := health.Check(context.Background(), &grpchealth.CheckRequest{Service: svc})
		if err != nil {
			return st, err
		}
		st.check[svc] = res.Status
	}
	var err error
	if st.readyz, st.readyBody, err = probe(t, hc, srv.URL+"/readyz"); err != nil {
		return st, err
	}
	if st.healthz, _, err = probe(t, hc, srv.URL+"/healthz"); err != nil {
		return st, err
	}
	s, err := openStream(t, rt, "")
	if err != nil {
		st.subscribe = connect.CodeOf(err)
	} else {
		s.Close()
	}
	return st, nil
}

func (st nodeState) serving() bool {
	for _, s := range st.check {
		if s != grpchealth.StatusServing {
			return false
		}
	}
	return st.readyz == http.StatusOK && st.readyBody == "ready\n" && st.healthz == http.StatusOK && st.subscribe == 0
}

func (st nodeState) notServing() bool {
	for _, s := range st.check {
		if s != grpchealth.StatusNotServing {
			return false
		}
	}
	return st.readyz == http.StatusServiceUnavailable && strings.HasPrefix(st.readyBody, "not ready: ") &&
		st.healthz == http.StatusOK && st.subscribe == connect.CodeUnavailable
}

// nextWatch waits for the next status a health Watch reports.
func nextWatch(t *testing.T, events <-chan grpchealth.WatchEvent) grpchealth.Status {
	t.Helper()
	select {
	case ev, ok := <-events:
		if !ok {
			t.Fatal("health Watch ended")
		}
		if ev.Err != nil {
			t.Fatalf("health Watch: %v", ev.Err)
		}
		return ev.Response.Status
	case <-time.After(15 * time.Second):
		t.Fatal("health Watch reported nothing within 15s")
	}
	return 0
}

// TestReadinessFollowsNATS: on a node whose broker is JetStream, stopping
// NATS turns health Check and Watch to NOT_SERVING and /readyz to 503 while
// Subscribe answers Unavailable, and /healthz stays 200; starting NATS again
// brings all of them back together.
func TestReadinessFollowsNATS(t *testing.T) {
	t.Parallel()
	n := natstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	js, err := broker.NewJetStream(ctx, broker.JetStreamConfig{URL: n.URL(), Logger: testkit.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { js.Close() }) // after the server's cleanup
	srv := newTestServer(t, func(c *server.Config) { c.Broker = js })

	hc := testkit.HTTPClient(t, false)
	health := grpchealth.NewClient(testkit.HTTPClient(t, true), srv.URL, connect.WithGRPC())
	rt := srv.realtimeClient(t, clientKinds[0], srv.Token(t, "alice", "home", time.Hour))
	watchCtx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	watch := health.Watch(watchCtx, &grpchealth.CheckRequest{})

	if got := nextWatch(t, watch); got != grpchealth.StatusServing {
		t.Fatalf("Watch starts with %v, want serving", got)
	}
	st, err := observe(t, srv, hc, health, rt)
	if err != nil || !st.serving() {
		t.Fatalf("with NATS up: %v (%v)", st, err)
	}

	n.Stop()
	if got := nextWatch(t, watch); got != grpchealth.StatusNotServing {
		t.Fatalf("Watch with NATS down: %v, want not serving", got)
	}
	poll.Eventually(t, 15*time.Second, 50*time.Millisecond, func() error {
		st, err := observe(t, srv, hc, health, rt)
		if err == nil && !st.notServing() {
			err = errors.New(st.String())
		}
		return err
	})

	n.Start(t)
	if got := nextWatch(t, watch); got != grpchealth.StatusServing {
		t.Fatalf("Watch with NATS back: %v, want serving", got)
	}
	poll.Eventually(t, 15*time.Second, 50*time.Millisecond, func() error {
		st, err := observe(t, srv, hc, health, rt)
		if err == nil && !st.serving() {
			err = errors.New(st.String())
		}
		return err
	})
}

// TestReadinessMemoryBroker: a node on the in-memory broker is ready until
// its broker is closed.
func TestReadinessMemoryBroker(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	hc := testkit.HTTPClient(t, false)
	health := grpchealth.NewClient(hc, srv.URL)
	rt := srv.realtimeClient(t, clientKinds[0], srv.Token(t, "alice", "home", time.Hour))
	if st, err := observe(t, srv, hc, health, rt); err != nil || !st.serving() {
		t.Fatalf("memory broker: %v (%v)", st, err)
	}
	srv.Broker.Close()
	if st, err := observe(t, srv, hc, health, rt); err != nil || !st.notServing() {
		t.Fatalf("memory broker closed: %v (%v)", st, err)
	}
	if _, err := health.Check(context.Background(), &grpchealth.CheckRequest{Service: "no.such.Service"}); connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("Check of an unknown service: %v, want NotFound", err)
	}
}

// TestProbesBeforePageFallback: with the web demo served at /, the probes
// still answer /healthz and /readyz (never index.html), while other paths
// without an extension still get the page.
func TestProbesBeforePageFallback(t *testing.T) {
	t.Parallel()
	web := t.TempDir()
	const page = "<!doctype html><title>demo</title>"
	if err := os.WriteFile(filepath.Join(web, "index.html"), []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := newTestServer(t, func(c *server.Config) { c.WebDir = web })
	for _, h2c := range []bool{false, true} {
		hc := testkit.HTTPClient(t, h2c)
		for _, tc := range []struct {
			path, body, contentType string
		}{
			{"/healthz", "ok\n", "text/plain; charset=utf-8"},
			{"/readyz", "ready\n", "text/plain; charset=utf-8"},
			{"/readyz?verbose=1", "ready\n", "text/plain; charset=utf-8"},
			{"/list/groceries", page, "text/html; charset=utf-8"},
		} {
			t.Run(fmt.Sprintf("h2c=%v%s", h2c, tc.path), func(t *testing.T) {
				res, err := hc.Get(srv.URL + tc.path)
				if err != nil {
					t.Fatal(err)
				}
				defer res.Body.Close()
				body, _ := io.ReadAll(res.Body)
				if res.StatusCode != http.StatusOK || string(body) != tc.body || res.Header.Get("Content-Type") != tc.contentType {
					t.Fatalf("GET %s: %d %s %q, want 200 %s %q", tc.path, res.StatusCode, res.Header.Get("Content-Type"), body, tc.contentType, tc.body)
				}
			})
		}
	}
}

// TestShutdownDrainsReadinessFirst: Shutdown turns the node not ready at
// once and keeps serving through the drain delay (streams stay open, new
// ones open, /healthz is 200); only then do streams end with Unavailable.
// A health Watch reports NOT_SERVING and ends with the server, so that it
// does not hold Shutdown up.
func TestShutdownDrainsReadinessFirst(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, func(c *server.Config) { c.DrainDelay = time.Hour })
	hc := testkit.HTTPClient(t, false)
	health := grpchealth.NewClient(testkit.HTTPClient(t, true), srv.URL, connect.WithGRPC())
	rt := srv.realtimeClient(t, clientKinds[0], srv.Token(t, "alice", "home", time.Hour))
	watch := health.Watch(context.Background(), &grpchealth.CheckRequest{})
	if got := nextWatch(t, watch); got != grpchealth.StatusServing {
		t.Fatalf("Watch starts with %v", got)
	}
	live := subscribe(t, rt, "")

	drainCtx, endDrain := context.WithCancel(context.Background())
	defer endDrain()
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(drainCtx) }()

	if got := nextWatch(t, watch); got != grpchealth.StatusNotServing {
		t.Fatalf("Watch while draining: %v, want not serving", got)
	}
	code, body, err := probe(t, hc, srv.URL+"/readyz")
	if err != nil || code != http.StatusServiceUnavailable || body != "not ready: server is shutting down\n" {
		t.Fatalf("/readyz while draining: %d %q %v", code, body, err)
	}
	if code, _, err := probe(t, hc, srv.URL+"/healthz"); err != nil || code != http.StatusOK {
		t.Fatalf("/healthz while draining: %d %v", code, err)
	}
	another := subscribe(t, rt, "") // still accepted while the balancer catches up
	select {
	case <-live.done:
		t.Fatal("a stream ended during the drain delay")
	default:
	}

	endDrain() // the delay is over: streams end
	for _, s := range []*stream{live, another} {
		wantCode(t, s.end(t, 10*time.Second), connect.CodeUnavailable)
	}
	select {
	case ev, ok := <-watch:
		if ok && ev.Err == nil {
			t.Fatalf("Watch went on after shutdown: %v", ev.Response.Status)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Watch did not end with the server")
	}
	<-shut
}

// TestShutdownEndsHealthWatch: without a drain delay, Shutdown completes
// while a health Watch is open instead of waiting for it until its timeout.
func TestShutdownEndsHealthWatch(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	health := grpchealth.NewClient(testkit.HTTPClient(t, true), srv.URL, connect.WithGRPC())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watch := health.Watch(ctx, &grpchealth.CheckRequest{Service: realtimev1connect.RealtimeServiceName})
	if got := nextWatch(t, watch); got != grpchealth.StatusServing {
		t.Fatalf("Watch starts with %v", got)
	}
	sctx, scancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer scancel()
	if err := srv.Shutdown(sctx); err != nil {
		t.Fatalf("Shutdown with a health Watch open: %v", err)
	}
}
