package server

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	systemv1 "github.com/honeydo/realtime/gen/honeydo/system/v1"
	"github.com/honeydo/realtime/internal/auth"
	"github.com/honeydo/realtime/internal/broker"
	"github.com/honeydo/realtime/internal/metrics"
	"github.com/honeydo/realtime/internal/room"
)

// BenchmarkStreamDeliver is a stream's own cost per event, without the
// network: one event at a time is published to a Subscribe stream served by
// the real handler (Connect, binary frames) into a ResponseWriter that keeps
// nothing, and the next is published once the frame is flushed.
// latency-ns/event is publish → wake-up → coalescing → encoding → Connect's
// Send → flush; what a syscall would add is not in it, so a stream's fixed
// costs (a yield, a timer reset) are not lost in it. gap is the pause
// before each event: 0 is a stream kept busy one event at a time, 1ms is a
// lone event at light load (bench/peers' W2s and W4). ns/op includes the
// gap; B/op and allocs/op are the whole path's.
func BenchmarkStreamDeliver(b *testing.B) {
	for _, gap := range []time.Duration{0, time.Millisecond} {
		b.Run("gap="+gap.String(), func(b *testing.B) { benchmarkStreamDeliver(b, gap) })
	}
}

func benchmarkStreamDeliver(b *testing.B, gap time.Duration) {
	br := broker.NewMemory(broker.MemoryConfig{})
	defer br.Close()
	s := &realtimeService{
		broker:  br,
		cfg:     streamConfig{Heartbeat: time.Hour, TokenGrace: time.Minute, QueueSize: 1024, Logger: slog.New(slog.DiscardHandler)},
		streams: newStreamRegistry(),
		metrics: metrics.New(),
		alarms:  newAlarmClock(),
		closing: make(chan struct{}),
	}
	_, h := s.newHandler()
	req := httptest.NewRequest(http.MethodPost, "/honeydo.realtime.v1.RealtimeService/Subscribe", bytes.NewReader(make([]byte, 5)))
	req.Header.Set("Content-Type", "application/connect+proto")
	req.Header.Set("Connect-Protocol-Version", "1")
	ctx, cancel := context.WithCancel(auth.WithPrincipal(context.Background(), &auth.Principal{UserID: "alice", HouseholdID: "home"}))
	w := &flushSignal{header: http.Header{}, flushed: make(chan struct{}, 1)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.ServeHTTP(w, req.WithContext(ctx))
	}()
	defer func() { cancel(); <-done }()
	<-w.flushed // the welcome
	padding := make([]byte, 160)
	var latency time.Duration
	b.ReportAllocs()
	for b.Loop() {
		if gap > 0 {
			time.Sleep(gap)
		}
		ev := &realtimev1.Event{Payload: &realtimev1.Event_Probe{Probe: &systemv1.Probe{Target: "user:alice", Padding: padding}}}
		t0 := time.Now()
		if _, err := br.Publish(ctx, broker.Target{Room: room.User("alice")}, ev); err != nil {
			b.Fatal(err)
		}
		<-w.flushed
		latency += time.Since(t0)
	}
	b.ReportMetric(float64(latency.Nanoseconds())/float64(b.N), "latency-ns/event")
}

// flushSignal is a ResponseWriter that discards what is written and
// signals each flush (Connect flushes after every message of a stream).
type flushSignal struct {
	header  http.Header
	flushed chan struct{}
}

func (w *flushSignal) Header() http.Header         { return w.header }
func (w *flushSignal) Write(p []byte) (int, error) { return len(p), nil }
func (w *flushSignal) WriteHeader(int)             {}
func (w *flushSignal) Flush()                      { w.flushed <- struct{}{} }
