package server

import (
	"bytes"
	"errors"
	"fmt"
	"mime"
	"strings"
	"sync"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	"github.com/honeydo/realtime/internal/broker"
	"github.com/honeydo/realtime/internal/framewire"
)

// Field numbers of the frames we assemble by hand, from the one source
// that the load generator's reader shares.
const (
	subscribeResponseEventsField = framewire.SubscribeResponseEvents
	eventBatchEventsField        = framewire.EventBatchEvents
)

// frameMode is how a stream's events frames are built; it follows the codec
// Connect serves the stream with.
type frameMode int

const (
	// typedFrames: a typed SubscribeResponse, right for any codec.
	typedFrames frameMode = iota
	// binaryFrames: for the protobuf binary codec, from [broker.Message.Wire].
	binaryFrames
	// jsonFrames: for [jsonCodec], from [broker.Message.JSON].
	jsonFrames
)

// frameEncoder builds the frame that carries a batch of events.
//
// Every event is encoded once and the bytes are shared by all subscribers:
// in protobuf binary by the broker on publish, in JSON on first use. A
// repeated message field is a concatenation of (tag, length, bytes), so a
// binary batch frame can be assembled from those bytes without re-encoding
// anything: the frame is an empty SubscribeResponse whose unknown-field
// section holds the assembled `events` field, which proto.Marshal writes out
// verbatim. That frame is only right for the binary codec (protojson drops
// unknown fields and writes `{}`); JSON streams get a [jsonEventsFrame],
// which only [jsonCodec] can write. So the mode follows the codec Connect
// negotiated, and a codec it does not know gets a typed message.
//
// A binary frame is assembled in a buffer shared with every stream
// ([frameBuffers]) and held only until [frameEncoder.release]: a buffer per
// stream, which a burst grows to tens of KiB, made a thousand streams at
// saturation hold tens of MiB of cache-cold memory.
type frameEncoder struct {
	mode frameMode
	// room, when set, is how many bytes a binary frame leaves free in
	// front of its bytes: a direct stream (direct.go) writes its chunk
	// header and envelope prefix there and sends the frame from the buffer
	// it was built in, instead of marshalling it into another.
	room  int
	buf   *frameBuffer                 // between encode and release
	frame realtimev1.SubscribeResponse // reused: one allocation less per frame
	json  jsonEventsFrame
}

// newFrameEncoder returns the encoder for a stream served over protocol (as
// in [connect.Peer]) with the request's Content-Type.
func newFrameEncoder(protocol, contentType string) *frameEncoder {
	switch codecName(protocol, contentType) {
	case "proto":
		return &frameEncoder{mode: binaryFrames}
	case "json":
		return &frameEncoder{mode: jsonFrames}
	}
	return &frameEncoder{mode: typedFrames}
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

// release ends the last frame: its buffer goes back to be shared, and the
// encoder keeps neither its bytes nor its events.
func (e *frameEncoder) release() {
	if e.buf != nil {
		frameBuffers.put(e.buf)
		e.buf = nil
	}
	e.frame.ProtoReflect().SetUnknown(nil)
	e.json.msgs = nil
}

// encode returns the frame for msgs, to be sent on the stream's connection:
// with [frameEncoder.room], a binary frame is its *frameBuffer, the frame's
// bytes after room bytes. The result is valid until [frameEncoder.release],
// which must come before the next call.
func (e *frameEncoder) encode(msgs []*broker.Message) any {
	switch e.mode {
	case binaryFrames:
		inner := 0
		for _, m := range msgs {
			inner += protowire.SizeTag(eventBatchEventsField) + protowire.SizeBytes(len(m.Wire))
		}
		e.buf = frameBuffers.get()
		b := e.buf.b[:e.room]
		b = protowire.AppendTag(b, subscribeResponseEventsField, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(inner))
		for _, m := range msgs {
			b = protowire.AppendTag(b, eventBatchEventsField, protowire.BytesType)
			b = protowire.AppendBytes(b, m.Wire)
		}
		e.buf.b = b
		if e.room > 0 {
			return e.buf
		}
		e.frame.ProtoReflect().SetUnknown(b)
		return &e.frame
	case jsonFrames:
		e.json.msgs = msgs
		return &e.json
	}
	events := make([]*realtimev1.Event, len(msgs))
	for i, m := range msgs {
		events[i] = m.Event
	}
	return &realtimev1.SubscribeResponse{Frame: &realtimev1.SubscribeResponse_Events{Events: &realtimev1.EventBatch{Events: events}}}
}

// frameBuffer holds one frame on its way to the connection.
type frameBuffer struct {
	b []byte
	z bytes.Buffer // the compressed message, when there is one
}

// frameBuffers are shared by every stream, each taking one only while it
// builds and writes a frame. A buffer per stream, grown by a burst to tens
// of KiB and kept, cost a thousand streams at saturation tens of MiB of
// fresh, cache-cold memory; at the start of W2 (docs/PERFORMANCE.md) the
// direct streams' own buffers made streams fall behind until they were cut
// as slow consumers, in every run, where shared buffers lose nothing.
var frameBuffers = bufferPool{pool: sync.Pool{New: func() any { return &frameBuffer{b: make([]byte, 0, 4<<10)} }}}

type bufferPool struct{ pool sync.Pool }

func (p *bufferPool) get() *frameBuffer { return p.pool.Get().(*frameBuffer) }

// put returns buf unless a rare frame (a long replay) grew it past
// maxPooledFrameBuffer.
func (p *bufferPool) put(buf *frameBuffer) {
	if cap(buf.b) > maxPooledFrameBuffer || buf.z.Cap() > maxPooledFrameBuffer {
		return
	}
	p.pool.Put(buf)
}

const maxPooledFrameBuffer = 256 << 10

// jsonEventsFrame is an events frame for [jsonCodec] to write from the
// events' shared JSON encodings.
type jsonEventsFrame struct {
	msgs []*broker.Message
}

// jsonFramePrefix and jsonFrameSuffix enclose the events of a JSON events
// frame: {"events":{"events":[...]}}, with the names protojson uses.
var jsonFramePrefix, jsonFrameSuffix = func() (string, string) {
	outer := (&realtimev1.SubscribeResponse{}).ProtoReflect().Descriptor().Fields().ByNumber(subscribeResponseEventsField)
	inner := (&realtimev1.EventBatch{}).ProtoReflect().Descriptor().Fields().ByNumber(eventBatchEventsField)
	return fmt.Sprintf(`{%q:{%q:[`, outer.JSONName(), inner.JSONName()), "]}}"
}()

// jsonCodecNames are the names connect-go gives its JSON codec: one per
// Content-Type it accepts for JSON.
var jsonCodecNames = []string{"json", "json; charset=utf-8"}

// jsonCodec is connect-go's JSON codec (protojson; unknown fields are
// discarded on input so that clients may be newer than the server) that can
// also write a [jsonEventsFrame]. The RealtimeService handler uses it in
// place of connect-go's, under both of its names.
type jsonCodec struct{ name string }

var _ connect.Codec = jsonCodec{}

// Name implements connect.Codec.
func (c jsonCodec) Name() string { return c.name }

// Marshal implements connect.Codec.
func (c jsonCodec) Marshal(m any) ([]byte, error) { return c.MarshalAppend(nil, m) }

// MarshalAppend appends m's encoding to dst. Connect uses it in preference
// to Marshal, writing into its pooled buffers.
func (jsonCodec) MarshalAppend(dst []byte, m any) ([]byte, error) {
	if f, ok := m.(*jsonEventsFrame); ok {
		dst = append(dst, jsonFramePrefix...)
		for i, msg := range f.msgs {
			b, err := msg.JSON()
			if err != nil {
				return nil, fmt.Errorf("event %s: %w", msg.Event.GetId(), err)
			}
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, b...)
		}
		return append(dst, jsonFrameSuffix...), nil
	}
	pm, ok := m.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("%T is not a proto.Message", m)
	}
	return protojson.MarshalOptions{}.MarshalAppend(dst, pm)
}

// Unmarshal implements connect.Codec.
func (jsonCodec) Unmarshal(b []byte, m any) error {
	pm, ok := m.(proto.Message)
	if !ok {
		return fmt.Errorf("%T is not a proto.Message", m)
	}
	if len(b) == 0 {
		return errors.New("zero-length payload is not a valid JSON object")
	}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, pm); err != nil {
		return fmt.Errorf("unmarshal into %T: %w", m, err)
	}
	return nil
}

// protoCodec is connect-go's protobuf binary codec, for the frames a
// direct stream (direct.go) writes itself.
type protoCodec struct{}

var _ connect.Codec = protoCodec{}

// Name implements connect.Codec.
func (protoCodec) Name() string { return "proto" }

// Marshal implements connect.Codec.
func (c protoCodec) Marshal(m any) ([]byte, error) { return c.MarshalAppend(nil, m) }

// MarshalAppend appends m's encoding to dst.
func (protoCodec) MarshalAppend(dst []byte, m any) ([]byte, error) {
	pm, ok := m.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("%T is not a proto.Message", m)
	}
	return proto.MarshalOptions{}.MarshalAppend(dst, pm)
}

// Unmarshal implements connect.Codec.
func (protoCodec) Unmarshal(b []byte, m any) error {
	pm, ok := m.(proto.Message)
	if !ok {
		return fmt.Errorf("%T is not a proto.Message", m)
	}
	return proto.Unmarshal(b, pm)
}
