package server

import (
	"mime"
	"strings"

	"connectrpc.com/connect"
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
// verbatim. That frame is only right for the binary codec: any other codec
// (protojson drops unknown fields and writes `{}`) needs a typed message, so
// the shortcut is taken only when the stream's codec is known to be binary.
type frameEncoder struct {
	binary bool
	buf    []byte
	frame  realtimev1.SubscribeResponse // reused: one allocation less per frame
}

// newFrameEncoder returns the encoder for a stream served over protocol (as
// in [connect.Peer]) with the request's Content-Type.
func newFrameEncoder(protocol, contentType string) *frameEncoder {
	return &frameEncoder{binary: codecName(protocol, contentType) == "proto"}
}

// codecName names the codec Connect serves a stream with, as connect-go
// derives it: the media type of the Content-Type less the protocol's prefix,
// where gRPC's and gRPC-Web's bare types mean "proto". Connect matches the
// Content-Type after mime.ParseMediaType, so case and parameters vary
// ("application/connect+json; charset=utf-8" is its JSON codec); parameters
// are dropped here. The result is "" for anything else.
func codecName(protocol, contentType string) string {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return ""
	}
	var bare, prefix string
	switch protocol {
	case connect.ProtocolConnect:
		prefix = "application/connect+"
	case connect.ProtocolGRPC:
		bare, prefix = "application/grpc", "application/grpc+"
	case connect.ProtocolGRPCWeb:
		bare, prefix = "application/grpc-web", "application/grpc-web+"
	default:
		return ""
	}
	if bare != "" && mt == bare {
		return "proto"
	}
	if name, ok := strings.CutPrefix(mt, prefix); ok {
		return name
	}
	return ""
}

// encode returns the frame for msgs. The result is only valid until the next
// call: the binary form reuses one buffer per stream.
func (e *frameEncoder) encode(msgs []*broker.Message) *realtimev1.SubscribeResponse {
	if !e.binary {
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
