package server

import (
	"context"
	"fmt"
	"testing"

	"google.golang.org/protobuf/proto"

	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	systemv1 "github.com/honeydo/realtime/gen/honeydo/system/v1"
	"github.com/honeydo/realtime/internal/broker"
)

// BenchmarkFrameEncode is the encode path of one events frame: assembling
// the SubscribeResponse from the broker's pre-encoded events, then
// marshalling it as Connect's codec does. Events are the bench's ~200-byte
// probes.
func BenchmarkFrameEncode(b *testing.B) {
	m := broker.NewMemory(broker.MemoryConfig{})
	defer m.Close()
	msgs := make([]*broker.Message, maxEventsPerFrame)
	for i := range msgs {
		msg, err := m.Publish(context.Background(), broker.Target{Room: "room:bench"}, &realtimev1.Event{Payload: &realtimev1.Event_Probe{Probe: &systemv1.Probe{
			SendTimeUnixMicros: 1_700_000_000_000_000, Seq: uint64(i), Target: "room:bench", Padding: make([]byte, 160),
		}}})
		if err != nil {
			b.Fatal(err)
		}
		msgs[i] = msg
	}
	for _, n := range []int{1, 10, maxEventsPerFrame} {
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			enc := newFrameEncoder("application/connect+proto")
			var out []byte
			b.ReportAllocs()
			for b.Loop() {
				var err error
				out, err = proto.MarshalOptions{}.MarshalAppend(out[:0], enc.encode(msgs[:n]))
				if err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(len(out)))
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/event")
		})
	}
}
