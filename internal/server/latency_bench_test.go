package server_test

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	systemv1 "github.com/honeydo/realtime/gen/honeydo/system/v1"
	"github.com/honeydo/realtime/internal/testkit"
)

// BenchmarkLoneEvent is light load, as in bench/peers' W4: one event at a
// time to one user's single HTTP/1.1 stream, each read by the client before
// the next is published. ns/op is the round trip from publish to the
// client holding the frame (server and client in this process); B/op and
// allocs/op are the whole path's, both sides. cpu-ns/op is the process's
// CPU time (user + system, from getrusage) per event: what the path costs,
// which a busy machine inflates far less than it does the wall-clock
// ns/op (that includes waiting for a CPU).
//
// (A variant with goroutines that stay runnable measures Go's scheduler
// instead: while the run queues are never empty the netpoller is polled
// only every 10 ms, so every event takes ~20 ms whatever the stream does.)
func BenchmarkLoneEvent(b *testing.B) {
	srv := testkit.StartServer(b)
	conn, body, err := dialHTTP1Stream(strings.TrimPrefix(srv.URL, "http://"), srv.Token(b, "alice", "home", time.Hour))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	padding := make([]byte, 160)
	ctx := context.Background()
	var buf []byte
	b.ReportAllocs()
	cpu0 := cpuTime(b)
	for b.Loop() {
		ev := &realtimev1.Event{Payload: &realtimev1.Event_Probe{Probe: &systemv1.Probe{Target: "user:alice", Padding: padding}}}
		if _, err := srv.Emitter.ToUser(ctx, "alice", ev); err != nil {
			b.Fatal(err)
		}
		for {
			if buf, err = nextEnvelope(body, buf); err != nil {
				b.Fatal(err)
			}
			if len(buf) > 0 && buf[0] == 2<<3|2 { // SubscribeResponse.events; skip heartbeats
				break
			}
		}
	}
	b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/op")
}

// cpuTime is the process's CPU time so far, user and system.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
