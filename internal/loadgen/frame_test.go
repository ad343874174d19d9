package loadgen

import (
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	systemv1 "github.com/honeydo/realtime/gen/honeydo/system/v1"
)

// batchFrame is a SubscribeResponse carrying n probes, as realtimed sends it.
func batchFrame(t testing.TB, n int) []byte {
	events := make([]*realtimev1.Event, n)
	for i := range events {
		events[i] = &realtimev1.Event{Id: "abc-1", Cursor: "cursor", Time: timestamppb.Now(),
			Payload: &realtimev1.Event_Probe{Probe: &systemv1.Probe{SendTimeUnixMicros: 1_000_000 + int64(i), Seq: uint64(i), Target: "room:bench", Padding: make([]byte, 160)}}}
	}
	events = append(events, &realtimev1.Event{Payload: &realtimev1.Event_Notification{Notification: &systemv1.Notification{Message: "not a probe"}}})
	b, err := proto.Marshal(&realtimev1.SubscribeResponse{Frame: &realtimev1.SubscribeResponse_Events{Events: &realtimev1.EventBatch{Events: events}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestScanResponse(t *testing.T) {
	tl := tally{h: new(hist), nowUs: 1_000_100}
	kind, err := scanResponse(batchFrame(t, 10), &tl)
	if err != nil || kind != frameEvents {
		t.Fatalf("kind %v, err %v", kind, err)
	}
	if tl.events != 11 || tl.probes != 10 || tl.batches != 1 || tl.h.n.Load() != 10 || tl.h.max.Load() != 100 {
		t.Fatalf("tally %+v, hist n %d max %d", tl, tl.h.n.Load(), tl.h.max.Load())
	}
	w, _ := proto.Marshal(&realtimev1.SubscribeResponse{Frame: &realtimev1.SubscribeResponse_Welcome{Welcome: &realtimev1.Welcome{UserId: "1"}}})
	if kind, err := scanResponse(w, &tl); err != nil || kind != frameWelcome {
		t.Fatalf("welcome: kind %v, err %v", kind, err)
	}
	if _, err := scanResponse([]byte{0x12, 0x05, 0x0a}, &tl); err == nil {
		t.Fatal("truncated frame: no error")
	}
	frame := batchFrame(t, 10)
	if n := testing.AllocsPerRun(100, func() { _, _ = scanResponse(frame, &tl) }); n != 0 {
		t.Fatalf("scanResponse allocates %v times per frame", n)
	}
}

func TestEndStreamError(t *testing.T) {
	if err := endStreamError([]byte(`{}`)); err != errEndOfStream {
		t.Fatalf("empty end: %v", err)
	}
	if err := endStreamError([]byte(`{"error":{"code":"unauthenticated","message":"bad token"}}`)); err == nil || err.Error() != "unauthenticated: bad token" {
		t.Fatalf("error end: %v", err)
	}
}

// BenchmarkScan is the client's parsing cost per event in a 10-event frame.
func BenchmarkScan(b *testing.B) {
	frame := batchFrame(b, 10)
	tl := tally{h: new(hist), nowUs: 1_000_100}
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		if _, err := scanResponse(frame, &tl); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/11, "ns/event")
}
