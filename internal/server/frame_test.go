package server

import (
	"context"
	"strings"
	"sync"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	systemv1 "github.com/honeydo/realtime/gen/honeydo/system/v1"
	"github.com/honeydo/realtime/internal/broker"
)

// TestCodecName covers the Content-Type spellings connect-go accepts for a
// stream and some it does not: only the binary codec's may get the
// pre-encoded frame, and anything unrecognised falls back to the typed one.
func TestCodecName(t *testing.T) {
	for _, c := range []struct {
		protocol, contentType, want string
	}{
		{connect.ProtocolConnect, "application/connect+proto", "proto"},
		{connect.ProtocolConnect, "application/connect+json", "json"},
		{connect.ProtocolConnect, "application/connect+json; charset=utf-8", "json"},
		{connect.ProtocolConnect, "application/connect+json;charset=UTF-8", "json"},
		{connect.ProtocolConnect, "Application/Connect+JSON", "json"},
		{connect.ProtocolConnect, "application/connect+proto; charset=utf-8", "proto"},
		{connect.ProtocolConnect, "application/proto", ""}, // unary spelling
		{connect.ProtocolConnect, "application/grpc", ""},
		{connect.ProtocolGRPC, "application/grpc", "proto"},
		{connect.ProtocolGRPC, "application/grpc+proto", "proto"},
		{connect.ProtocolGRPC, "application/grpc+json", "json"},
		{connect.ProtocolGRPC, "application/grpc+json; charset=utf-8", "json"},
		{connect.ProtocolGRPC, "application/grpc-web+proto", ""},
		{connect.ProtocolGRPCWeb, "application/grpc-web", "proto"},
		{connect.ProtocolGRPCWeb, "application/grpc-web+proto", "proto"},
		{connect.ProtocolGRPCWeb, "application/grpc-web+json; charset=utf-8", "json"},
		{connect.ProtocolGRPCWeb, "application/grpc", ""},
		{connect.ProtocolGRPCWeb, "application/grpc-web-text", ""},
		{connect.ProtocolConnect, "", ""},
		{connect.ProtocolConnect, "application/connect+json; charset", ""}, // malformed
		{"", "application/connect+proto", ""},
	} {
		if got := codecName(c.protocol, c.contentType); got != c.want {
			t.Errorf("codecName(%q, %q) = %q, want %q", c.protocol, c.contentType, got, c.want)
		}
	}
}

// TestFrameModes checks that the frames assembled from shared encodings
// decode, strictly, to the typed frame, for one event and for several, and
// that the encoder reuses its buffers correctly from one frame to the next.
func TestFrameModes(t *testing.T) {
	b := broker.NewMemory(broker.MemoryConfig{})
	defer b.Close()
	var msgs []*broker.Message
	for _, text := range []string{"one", "twö \"2\"", ""} {
		m, err := b.Publish(context.Background(), broker.Target{Room: "room:x"}, &realtimev1.Event{Payload: &realtimev1.Event_Notification{Notification: &systemv1.Notification{Message: text}}})
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	typed := func(msgs []*broker.Message) *realtimev1.SubscribeResponse {
		return (&frameEncoder{mode: typedFrames}).encode(msgs).(*realtimev1.SubscribeResponse)
	}
	for _, c := range []struct {
		name   string
		mode   frameMode
		codec  connect.Codec
		decode func([]byte, proto.Message) error
	}{
		{"binary", binaryFrames, protoCodec{}, proto.Unmarshal},
		{"json", jsonFrames, jsonCodec{name: "json"}, protojson.Unmarshal},
	} {
		enc := &frameEncoder{mode: c.mode}
		for _, batch := range [][]*broker.Message{msgs, msgs[1:2], msgs[:2]} {
			b, err := c.codec.Marshal(enc.encode(batch))
			enc.release()
			if err != nil {
				t.Fatal(err)
			}
			got := new(realtimev1.SubscribeResponse)
			if err := c.decode(b, got); err != nil {
				t.Fatalf("%s: %v in %q", c.name, err, b)
			}
			if want := typed(batch); !proto.Equal(got, want) {
				t.Errorf("%s: decoded %v, want %v", c.name, got, want)
			}
		}
	}
}

// TestJSONFramesShareEncoding has streams encode one fresh event at once,
// as a broadcast does: under -race this checks that the lazily made JSON
// encoding is shared safely, and each gets the same bytes.
func TestJSONFramesShareEncoding(t *testing.T) {
	b := broker.NewMemory(broker.MemoryConfig{})
	defer b.Close()
	msg, err := b.Publish(context.Background(), broker.Target{Room: "room:x"}, &realtimev1.Event{Payload: &realtimev1.Event_Notification{Notification: &systemv1.Notification{Message: "all at once"}}})
	if err != nil {
		t.Fatal(err)
	}
	const streams = 8
	out := make([][]byte, streams)
	var wg sync.WaitGroup
	for i := range streams {
		wg.Go(func() {
			enc := &frameEncoder{mode: jsonFrames}
			out[i], _ = jsonCodec{}.Marshal(enc.encode([]*broker.Message{msg}))
		})
	}
	wg.Wait()
	for i := range out {
		if string(out[i]) != string(out[0]) || len(out[i]) == 0 {
			t.Fatalf("stream %d wrote %q, stream 0 %q", i, out[i], out[0])
		}
	}
}

// TestFrameEncoderRelease: once a frame is released, the encoder keeps
// neither its buffer nor its events (a burst's frame is tens of KiB), and
// encodes the same frames after as before.
func TestFrameEncoderRelease(t *testing.T) {
	b := broker.NewMemory(broker.MemoryConfig{})
	defer b.Close()
	burst := make([]*broker.Message, maxEventsPerFrame)
	for i := range burst {
		m, err := b.Publish(context.Background(), broker.Target{Room: "room:x"}, &realtimev1.Event{Payload: &realtimev1.Event_Notification{Notification: &systemv1.Notification{Message: "a burst's event of some length"}}})
		if err != nil {
			t.Fatal(err)
		}
		burst[i] = m
	}
	for _, c := range []struct {
		name  string
		mode  frameMode
		codec connect.Codec
	}{
		{"binary", binaryFrames, protoCodec{}},
		{"json", jsonFrames, jsonCodec{name: "json"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			enc := &frameEncoder{mode: c.mode}
			small, err := c.codec.Marshal(enc.encode(burst[:1]))
			if err != nil {
				t.Fatal(err)
			}
			enc.release()
			if _, err := c.codec.Marshal(enc.encode(burst)); err != nil {
				t.Fatal(err)
			}
			if c.mode == binaryFrames && (enc.buf == nil || len(enc.frame.ProtoReflect().GetUnknown()) < 4<<10) {
				t.Fatalf("a %d-event frame is not in the encoder's buffer: the burst proves nothing", len(burst))
			}
			enc.release()
			if enc.buf != nil {
				t.Errorf("release kept a %d-byte buffer", cap(enc.buf.b))
			}
			if n := len(enc.frame.ProtoReflect().GetUnknown()); n != 0 {
				t.Errorf("release kept the last frame's %d bytes", n)
			}
			if enc.json.msgs != nil {
				t.Errorf("release kept the last frame's %d events", len(enc.json.msgs))
			}
			again, err := c.codec.Marshal(enc.encode(burst[:1]))
			if err != nil {
				t.Fatal(err)
			}
			if string(again) != string(small) {
				t.Errorf("after release: %q, want %q", again, small)
			}
		})
	}
}

// TestFrameEncoderInPlace: with room, a binary frame comes back as its
// buffer, holding room bytes and then exactly the bytes the binary codec
// writes for the same frame without room; JSON frames are unchanged.
func TestFrameEncoderInPlace(t *testing.T) {
	b := broker.NewMemory(broker.MemoryConfig{})
	defer b.Close()
	var msgs []*broker.Message
	for i := range 3 {
		m, err := b.Publish(context.Background(), broker.Target{Room: "room:x"}, &realtimev1.Event{Payload: &realtimev1.Event_Notification{Notification: &systemv1.Notification{Message: strings.Repeat("x", i*100)}}})
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	plain := &frameEncoder{mode: binaryFrames}
	want, err := protoCodec{}.Marshal(plain.encode(msgs))
	plain.release()
	if err != nil {
		t.Fatal(err)
	}
	const room = 7
	enc := &frameEncoder{mode: binaryFrames, room: room}
	fb, ok := enc.encode(msgs).(*frameBuffer)
	if !ok {
		t.Fatal("a binary frame with room is not its buffer")
	}
	if len(fb.b) != room+len(want) || string(fb.b[room:]) != string(want) {
		t.Fatalf("frame in place %q, want %d bytes of room and %q", fb.b, room, want)
	}
	enc.release()
	if enc.buf != nil {
		t.Fatal("release kept the buffer")
	}
	if _, ok := (&frameEncoder{mode: jsonFrames, room: room}).encode(msgs).(*jsonEventsFrame); !ok {
		t.Fatal("a JSON frame with room is not a jsonEventsFrame")
	}
}
