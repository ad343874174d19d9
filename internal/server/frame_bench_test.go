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

// BenchmarkFrameEncode is the encode path of one events frame, per stream:
// assembling the frame from the events' shared encodings, then marshalling
// it as the stream's codec does. Events are the bench's ~200-byte probes;
// their JSON encodings are made in the first iteration and then shared, as
// between the streams of one event.
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
	protoAppend := func(dst []byte, m any) ([]byte, error) {
		return proto.MarshalOptions{}.MarshalAppend(dst, m.(proto.Message)) // as connect-go's proto codec
	}
	codecs := []struct {
		name    string
		mode    frameMode
		marshal func(dst []byte, m any) ([]byte, error)
	}{
		{"proto", binaryFrames, protoAppend},
		{"json", jsonFrames, jsonCodec{}.MarshalAppend},
		// A typed frame marshalled with protojson: the JSON path when each
		// stream encoded its events itself.
		{"json-typed", typedFrames, jsonCodec{}.MarshalAppend},
	}
	for _, c := range codecs {
		for _, n := range []int{1, 10, maxEventsPerFrame} {
			b.Run(fmt.Sprintf("codec=%s/events=%d", c.name, n), func(b *testing.B) {
				enc := &frameEncoder{mode: c.mode}
				var out []byte
				b.ReportAllocs()
				for b.Loop() {
					var err error
					out, err = c.marshal(out[:0], enc.encode(msgs[:n]))
					enc.release()
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
