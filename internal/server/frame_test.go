package server

import (
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protowire"

	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
)

// TestFrameFieldNumbers checks the hand-assembled frame's field numbers
// against the generated descriptors.
func TestFrameFieldNumbers(t *testing.T) {
	for _, c := range []struct {
		got  protowire.Number
		want protowire.Number
		name string
	}{
		{subscribeResponseEventsField, (&realtimev1.SubscribeResponse{}).ProtoReflect().Descriptor().Fields().ByName("events").Number(), "SubscribeResponse.events"},
		{eventBatchEventsField, (&realtimev1.EventBatch{}).ProtoReflect().Descriptor().Fields().ByName("events").Number(), "EventBatch.events"},
	} {
		if c.got != c.want {
			t.Errorf("%s is field %d, frame.go says %d", c.name, c.want, c.got)
		}
	}
}

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
