package server

import (
	"context"
	"fmt"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	systemv1 "github.com/honeydo/realtime/gen/honeydo/system/v1"
	"github.com/honeydo/realtime/internal/broker"
)

// BenchmarkFrameEncode is the encode path of one events frame, per stream:
// assembling the SubscribeResponse (from the broker's pre-encoded events for
// the binary codec, as a typed message for JSON), then marshalling it as
// Connect's codec does. Events are the bench's ~200-byte probes.
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
	codecs := []struct {
		contentType string
		marshal     func(dst []byte, m proto.Message) ([]byte, error)
	}{
		{"application/connect+proto", proto.MarshalOptions{}.MarshalAppend},
		{"application/connect+json", protojson.MarshalOptions{}.MarshalAppend},
	}
	for _, c := range codecs {
		for _, n := range []int{1, 10, maxEventsPerFrame} {
			b.Run(fmt.Sprintf("codec=%s/events=%d", codecName(connect.ProtocolConnect, c.contentType), n), func(b *testing.B) {
				enc := newFrameEncoder(connect.ProtocolConnect, c.contentType)
				var out []byte
				b.ReportAllocs()
				for b.Loop() {
					var err error
					out, err = c.marshal(out[:0], enc.encode(msgs[:n]))
					if err != nil {
						b.Fatal(err)
					}
				}
				b.SetBytes(int64(len(out)))
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/event")
			})
		}
	}
}
