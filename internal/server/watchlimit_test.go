package server_test

import (
	"context"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"

	"github.com/honeydo/realtime/internal/server"
	"github.com/honeydo/realtime/internal/testkit"
)

// TestHealthWatchLifetime: a health Watch, which needs no credential, ends
// with UNAVAILABLE after its lifetime instead of living for as long as the
// caller likes, and the client may watch again at once.
func TestHealthWatchLifetime(t *testing.T) {
	t.Parallel()
	const lifetime = 300 * time.Millisecond
	srv := newTestServer(t, func(c *server.Config) { c.HealthWatchLifetime = lifetime })
	health := grpchealth.NewClient(testkit.HTTPClient(t, true), srv.URL, connect.WithGRPC())
	for i := range 2 {
		ctx, cancel := context.WithCancel(context.Background())
		start := time.Now()
		watch := health.Watch(ctx, &grpchealth.CheckRequest{})
		if got := nextWatch(t, watch); got != grpchealth.StatusServing {
			t.Fatalf("watch %d starts with %v", i, got)
		}
		select {
		case ev, ok := <-watch:
			if !ok || connect.CodeOf(ev.Err) != connect.CodeUnavailable {
				t.Fatalf("watch %d ended with %+v (open %v), want UNAVAILABLE", i, ev, ok)
			}
			t.Logf("watch %d ended after %v (lifetime %v): %v", i, time.Since(start).Round(time.Millisecond), lifetime, ev.Err)
		case <-time.After(10 * time.Second):
			t.Fatalf("watch %d still open 10s after it began (lifetime %v)", i, lifetime)
		}
		cancel()
	}
}

// TestReflectionSessionIsBounded: a reflection session, the public
// bidirectional stream, cannot be held open without a credential by a
// caller that keeps asking: the request body timeout counts from the
// session's headers, not from its last request. (A bidirectional stream
// needs HTTP/2; slow HTTP/1.1 bodies are TestSlowBodyIsCutOff's.)
func TestReflectionSessionIsBounded(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	srv := newTestServer(t, func(c *server.Config) { c.RequestBodyTimeout = timeout })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rs := grpcreflect.NewClient(testkit.HTTPClient(t, true), srv.URL, connect.WithGRPC()).NewStream(ctx)
	defer func() { _, _ = rs.Close() }()
	start := time.Now()
	asked := 0
	for {
		_, err := rs.ListServices()
		if err != nil {
			t.Logf("session ended after %v and %d requests (timeout %v): %v", time.Since(start).Round(time.Millisecond), asked, timeout, err)
			break
		}
		asked++
		if time.Since(start) > 10*time.Second {
			t.Fatalf("session still answering after %v and %d requests (timeout %v)", time.Since(start), asked, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if asked == 0 {
		t.Error("the session answered nothing")
	}
}
