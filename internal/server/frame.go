package server

import (
	"strings"

	"google.golang.org/protobuf/encoding/protowire"

	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	"github.com/honeydo/realtime/internal/broker"
)

// Field numbers of the frames we assemble by hand; frame_test.go checks
// them against the generated descriptors.
const (
	subscribeResponseEventsField protowire.Number = 2 // SubscribeResponse.events
	eventBatchEventsField        protowire.Number = 1 // EventBatch.events
)

// frameEncoder builds the SubscribeResponse that carries a batch of events.
//
// Every event is encoded once, by the broker, and shared by all subscribers.
// A repeated message field is a concatenation of (tag, length, bytes), so a
// binary batch frame can be assembled from those bytes without re-encoding
// anything: the frame is an empty SubscribeResponse whose unknown-field
// section holds the assembled `events` field, which proto.Marshal writes out
// verbatim. JSON has no such shortcut, so JSON streams get a typed message.
type frameEncoder struct {
	json  bool
	buf   []byte
	frame realtimev1.SubscribeResponse // reused: one allocation less per frame
}

func newFrameEncoder(contentType string) *frameEncoder {
	return &frameEncoder{json: strings.HasSuffix(contentType, "+json")}
}

// encode returns the frame for msgs. The result is only valid until the next
// call: the binary form reuses one buffer per stream.
func (e *frameEncoder) encode(msgs []*broker.Message) *realtimev1.SubscribeResponse {
	if e.json {
		events := make([]*realtimev1.Event, len(msgs))
		for i, m := range msgs {
			events[i] = m.Event
		}
		return &realtimev1.SubscribeResponse{Frame: &realtimev1.SubscribeResponse_Events{Events: &realtimev1.EventBatch{Events: events}}}
	}
	inner := 0
	for _, m := range msgs {
		inner += protowire.SizeTag(eventBatchEventsField) + protowire.SizeBytes(len(m.Wire))
	}
	b := e.buf[:0]
	b = protowire.AppendTag(b, subscribeResponseEventsField, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(inner))
	for _, m := range msgs {
		b = protowire.AppendTag(b, eventBatchEventsField, protowire.BytesType)
		b = protowire.AppendBytes(b, m.Wire)
	}
	e.buf = b
	e.frame.ProtoReflect().SetUnknown(b)
	return &e.frame
}
