package server_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/honeydo/realtime/client"
	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	"github.com/honeydo/realtime/gen/honeydo/realtime/v1/realtimev1connect"
	shoppingv1 "github.com/honeydo/realtime/gen/honeydo/shopping/v1"
	systemv1 "github.com/honeydo/realtime/gen/honeydo/system/v1"
	"github.com/honeydo/realtime/internal/server"
	"github.com/honeydo/realtime/internal/testkit"
)

// wireSpelling is one Content-Type that Connect accepts for Subscribe.
type wireSpelling struct {
	protocol    string // connect.ProtocolConnect, ProtocolGRPC or ProtocolGRPCWeb
	contentType string // exactly as sent
	json        bool   // the codec Connect picks for it is protojson
	// raw: a connect-go client cannot produce this spelling, so the test
	// writes the request and reads the envelopes by hand.
	raw bool
}

// wireSpellings are the content types connect-go's handler accepts for a
// server stream (its codecs are "proto", "json" and "json; charset=utf-8";
// it matches the Content-Type after mime.ParseMediaType, so case, spacing
// and the charset's case are free).
var wireSpellings = []wireSpelling{
	{protocol: connect.ProtocolConnect, contentType: "application/connect+proto"},
	{protocol: connect.ProtocolConnect, contentType: "application/connect+json", json: true},
	{protocol: connect.ProtocolConnect, contentType: "application/connect+json; charset=utf-8", json: true},
	{protocol: connect.ProtocolConnect, contentType: "application/connect+json;charset=UTF-8", json: true, raw: true},
	{protocol: connect.ProtocolConnect, contentType: "Application/Connect+JSON", json: true, raw: true},
	{protocol: connect.ProtocolConnect, contentType: "application/connect+proto", raw: true},
	{protocol: connect.ProtocolGRPC, contentType: "application/grpc"},
	{protocol: connect.ProtocolGRPC, contentType: "application/grpc+proto", raw: true},
	{protocol: connect.ProtocolGRPC, contentType: "application/grpc+json", json: true},
	{protocol: connect.ProtocolGRPC, contentType: "application/grpc+json; charset=utf-8", json: true},
	{protocol: connect.ProtocolGRPC, contentType: "application/grpc+json;charset=UTF-8", json: true, raw: true},
	{protocol: connect.ProtocolGRPCWeb, contentType: "application/grpc-web", raw: true},
	{protocol: connect.ProtocolGRPCWeb, contentType: "application/grpc-web+proto"},
	{protocol: connect.ProtocolGRPCWeb, contentType: "application/grpc-web+json", json: true},
	{protocol: connect.ProtocolGRPCWeb, contentType: "application/grpc-web+json; charset=utf-8", json: true},
	{protocol: connect.ProtocolGRPCWeb, contentType: "application/grpc-web+json; charset=utf-8", json: true, raw: true},
}

// wireCell is one way of calling Subscribe: a spelling, with or without
// gzip (requests sent compressed, responses accepted compressed), over
// HTTP/1.1 or h2c.
type wireCell struct {
	wireSpelling
	gzip bool
	h2c  bool
}

func (c wireCell) String() string {
	client := "connect-go"
	if c.raw {
		client = "raw"
	}
	httpVersion := "http1"
	if c.h2c {
		httpVersion = "h2c"
	}
	enc := "identity"
	if c.gzip {
		enc = "gzip"
	}
	return fmt.Sprintf("%s/%s/%s/%s/%s", c.protocol, strings.ReplaceAll(c.contentType, "/", "_"), enc, httpVersion, client)
}

func wireCells() []wireCell {
	var cells []wireCell
	for _, sp := range wireSpellings {
		for _, gz := range []bool{false, true} {
			for _, h2c := range []bool{false, true} {
				if sp.protocol == connect.ProtocolGRPC && !h2c {
					continue // gRPC needs HTTP/2
				}
				cells = append(cells, wireCell{wireSpelling: sp, gzip: gz, h2c: h2c})
			}
		}
	}
	return cells
}

// TestWireMatrix subscribes over every wire variant Connect accepts and
// checks that each receives exactly the events published, equal byte for
// byte after decoding, live and across a resume from its cursor.
func TestWireMatrix(t *testing.T) {
	// Compress every frame when the client accepts gzip, so that the gzip
	// cells really read compressed events.
	srv := newTestServer(t, func(c *server.Config) { c.CompressMinBytes = 1 })
	for i, cell := range wireCells() {
		t.Run(cell.String(), func(t *testing.T) {
			t.Parallel()
			runWireCell(t, srv, cell, fmt.Sprintf("wire-%d", i))
		})
	}
}

func runWireCell(t *testing.T, srv *testServer, cell wireCell, user string) {
	ctx := context.Background()
	token := srv.Token(t, user, "house-"+user, time.Minute)
	var want []*realtimev1.Event
	publish := func(n int) {
		t.Helper()
		for range n {
			// Publish stamps ev (id, cursor, time): it is the event
			// every wire must deliver.
			ev := wireEvent(len(want))
			if _, err := srv.Emitter.ToUser(ctx, user, ev); err != nil {
				t.Fatal(err)
			}
			want = append(want, ev)
		}
	}
	receive := func(s *stream, from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			if got := s.next(t); !sameEvent(got, want[i]) {
				t.Fatalf("event %d:\n got %v\nwant %v", i, prototext.Format(got), prototext.Format(want[i]))
			}
		}
	}

	s := openWire(t, srv, cell, token, "")
	publish(3)
	receive(s, 0, 3)
	s.Close()

	publish(3) // while disconnected: these come from history
	s = openWire(t, srv, cell, token, want[2].GetCursor())
	if got := s.Welcome.GetResume(); got != realtimev1.ResumeStatus_RESUME_STATUS_RESUMED {
		t.Fatalf("resume status %v", got)
	}
	receive(s, 3, 6)
	publish(1) // live again, right after the replay: nothing in between
	receive(s, 6, 7)
	s.Close()
}

// wireEvent returns the i-th event a cell publishes: every payload kind,
// with the field types whose JSON form differs most from the binary one
// (64-bit integers, bytes, doubles, enums, timestamps, non-ASCII text).
func wireEvent(i int) *realtimev1.Event {
	payloads := []func() *realtimev1.Event{
		func() *realtimev1.Event {
			return &realtimev1.Event{Payload: &realtimev1.Event_Notification{Notification: &systemv1.Notification{
				Id: "n1", Level: systemv1.Notification_LEVEL_WARNING, Title: "Crème brûlée", Message: "Ünïcode ✓ 🥛 \"quoted\"\nline",
				Time: timestamppb.New(time.Unix(1_700_000_000, 123_456_789)),
			}}}
		},
		func() *realtimev1.Event {
			return &realtimev1.Event{Payload: &realtimev1.Event_ItemAdded{ItemAdded: &shoppingv1.ItemAdded{Item: &shoppingv1.ShoppingItem{
				Id: "i1", ListId: "l1", Name: "Oat milk", Quantity: 1.5, Unit: "l", AddedByUserId: "alice",
				CreateTime: timestamppb.New(time.Unix(1_700_000_001, 1)), Version: 1 << 53,
			}}}}
		},
		func() *realtimev1.Event {
			return &realtimev1.Event{Payload: &realtimev1.Event_Probe{Probe: &systemv1.Probe{
				SendTimeUnixMicros: -1, Seq: 1<<64 - 1, Target: "user:x", Padding: []byte{0, 1, 0xfe, 0xff},
			}}}
		},
		func() *realtimev1.Event {
			return &realtimev1.Event{Payload: &realtimev1.Event_SettingUpdated{SettingUpdated: &systemv1.SettingUpdated{Key: "theme", Value: "{\"dark\":true}"}}}
		},
		func() *realtimev1.Event {
			return &realtimev1.Event{Payload: &realtimev1.Event_ItemUpdated{ItemUpdated: &shoppingv1.ItemUpdated{Item: &shoppingv1.ShoppingItem{
				Id: "i1", Name: "Oat milk", Checked: true, Version: 2, UpdateTime: timestamppb.New(time.Unix(1_700_000_002, 0)),
			}}}}
		},
		func() *realtimev1.Event {
			return &realtimev1.Event{Payload: &realtimev1.Event_ItemRemoved{ItemRemoved: &shoppingv1.ItemRemoved{ItemId: "i1"}}}
		},
		func() *realtimev1.Event {
			// Above the server's default compression threshold too.
			return &realtimev1.Event{Payload: &realtimev1.Event_Notification{Notification: &systemv1.Notification{Message: incompressible(2 << 10)}}}
		},
	}
	return payloads[i%len(payloads)]()
}

// sameEvent compares the deterministic binary encodings: equal bytes mean
// nothing was lost or changed on the way, whatever the wire format was.
func sameEvent(got, want *realtimev1.Event) bool {
	opts := proto.MarshalOptions{Deterministic: true}
	g, err1 := opts.Marshal(got)
	w, err2 := opts.Marshal(want)
	return err1 == nil && err2 == nil && bytes.Equal(g, w)
}

// runWire fills s, a stream over one wire variant, from recv until it
// fails; frames must be welcome (only first), events or heartbeats. A frame that decodes to none of them is an
// error: it is how events that the server encoded for another codec show up.
func runWire(s *stream, recv func() (*realtimev1.SubscribeResponse, error), closeFn func()) error {
	first, err := recv()
	if err != nil {
		closeFn()
		return err
	}
	if s.Welcome = first.GetWelcome(); s.Welcome == nil {
		closeFn()
		return fmt.Errorf("first frame %v, want welcome", first)
	}
	go func() {
		defer close(s.events)
		defer closeFn()
		for {
			res, err := recv()
			if err != nil {
				s.done <- err
				return
			}
			switch res.GetFrame().(type) {
			case *realtimev1.SubscribeResponse_Events:
				for _, ev := range res.GetEvents().GetEvents() {
					s.events <- ev
				}
			case *realtimev1.SubscribeResponse_Heartbeat:
			default:
				s.done <- fmt.Errorf("unexpected frame %v", res)
				return
			}
		}
	}()
	return nil
}

func openWire(t *testing.T, srv *testServer, cell wireCell, token, cursor string) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &stream{events: make(chan *realtimev1.Event, 64), done: make(chan error, 1), cancel: cancel}
	var err error
	if cell.raw {
		err = openRaw(ctx, t, srv, cell, token, cursor, s)
	} else {
		err = openConnectGo(ctx, t, srv, cell, token, cursor, s)
	}
	if err != nil {
		cancel()
		t.Fatalf("subscribe: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// openConnectGo subscribes with a connect-go client configured for cell.
func openConnectGo(ctx context.Context, t *testing.T, srv *testServer, cell wireCell, token, cursor string, s *stream) error {
	opts := []connect.ClientOption{client.BearerToken(token)}
	switch cell.protocol {
	case connect.ProtocolGRPC:
		opts = append(opts, connect.WithGRPC())
	case connect.ProtocolGRPCWeb:
		opts = append(opts, connect.WithGRPCWeb())
	}
	if cell.json {
		// connect-go spells the content type with the codec's name, so a
		// codec named "json; charset=utf-8" sends that parameter.
		if _, params, _ := strings.Cut(cell.contentType, "+json"); params != "" {
			opts = append(opts, connect.WithCodec(strictJSONCodec{name: "json" + params}))
		} else {
			opts = append(opts, connect.WithProtoJSON())
		}
	}
	if cell.gzip {
		opts = append(opts, connect.WithSendGzip())
	} else {
		opts = append(opts, connect.WithAcceptCompression("gzip", nil, nil))
	}
	c := realtimev1connect.NewRealtimeServiceClient(testkit.HTTPClient(t, cell.h2c), srv.URL, opts...)
	rs, err := c.Subscribe(ctx, connect.NewRequest(&realtimev1.SubscribeRequest{ResumeCursor: cursor}))
	if err != nil {
		return err
	}
	recv := func() (*realtimev1.SubscribeResponse, error) {
		if !rs.Receive() {
			if err := rs.Err(); err != nil {
				return nil, err
			}
			return nil, io.EOF
		}
		return rs.Msg(), nil
	}
	if err := runWire(s, recv, func() { rs.Close() }); err != nil {
		return err
	}
	conn, err := rs.Conn()
	if err != nil {
		return err
	}
	if got := conn.RequestHeader().Get("Content-Type"); got != cell.contentType {
		return fmt.Errorf("client sent Content-Type %q, want %q", got, cell.contentType)
	}
	encHeader := "Grpc-Encoding"
	if cell.protocol == connect.ProtocolConnect {
		encHeader = "Connect-Content-Encoding"
	}
	if got, want := rs.ResponseHeader().Get(encHeader), map[bool]string{true: "gzip"}[cell.gzip]; got != want {
		return fmt.Errorf("response %s %q, want %q", encHeader, got, want)
	}
	return nil
}

// strictJSONCodec is protojson under any codec name; unlike connect-go's
// own JSON codec it rejects unknown fields, so nothing is dropped unseen.
type strictJSONCodec struct{ name string }

func (c strictJSONCodec) Name() string { return c.name }

func (strictJSONCodec) Marshal(m any) ([]byte, error) { return protojson.Marshal(m.(proto.Message)) }

func (strictJSONCodec) Unmarshal(b []byte, m any) error {
	return protojson.Unmarshal(b, m.(proto.Message))
}

// Envelope flags of the Connect streaming, gRPC and gRPC-Web protocols.
const (
	flagCompressed   = 0x01
	flagConnectEnd   = 0x02
	flagGRPCWebTrail = 0x80
)

// openRaw subscribes with a hand-written request for cell and decodes the
// envelopes itself.
func openRaw(ctx context.Context, t *testing.T, srv *testServer, cell wireCell, token, cursor string, s *stream) error {
	hc := testkit.HTTPClient(t, cell.h2c)
	hc.Transport.(*http.Transport).DisableCompression = true // no transparent Accept-Encoding
	encode, decode := proto.Marshal, proto.Unmarshal
	if cell.json {
		encode = func(m proto.Message) ([]byte, error) { return protojson.Marshal(m) }
		decode = func(b []byte, m proto.Message) error { return protojson.Unmarshal(b, m) }
	}
	msg, err := encode(&realtimev1.SubscribeRequest{ResumeCursor: cursor})
	if err != nil {
		return err
	}
	var flags byte
	if cell.gzip {
		flags, msg = flagCompressed, gzipBytes(t, msg)
	}
	body := binary.BigEndian.AppendUint32([]byte{flags}, uint32(len(msg)))
	body = append(body, msg...)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+realtimev1connect.RealtimeServiceSubscribeProcedure, bytes.NewReader(body))
	if err != nil {
		return err
	}
	// Set verbatim: Header.Set would not change the value, but be explicit
	// that the spelling under test reaches the server as written.
	req.Header[textproto.CanonicalMIMEHeaderKey("Content-Type")] = []string{cell.contentType}
	req.Header.Set("Authorization", "Bearer "+token)
	sendEnc, acceptEnc := "Grpc-Encoding", "Grpc-Accept-Encoding"
	if cell.protocol == connect.ProtocolConnect {
		sendEnc, acceptEnc = "Connect-Content-Encoding", "Connect-Accept-Encoding"
	}
	if cell.protocol == connect.ProtocolGRPC {
		req.Header.Set("Te", "trailers")
	}
	if cell.gzip {
		req.Header.Set(sendEnc, "gzip")
		req.Header.Set(acceptEnc, "gzip")
	}
	res, err := hc.Do(req)
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK {
		res.Body.Close()
		return fmt.Errorf("HTTP %s", res.Status)
	}
	respEnc := res.Header.Get(sendEnc)
	recv := func() (*realtimev1.SubscribeResponse, error) {
		var prefix [5]byte
		if _, err := io.ReadFull(res.Body, prefix[:]); err != nil {
			if errors.Is(err, io.EOF) && cell.protocol == connect.ProtocolGRPC {
				return nil, fmt.Errorf("stream ended: grpc-status %q %q", res.Trailer.Get("Grpc-Status"), res.Trailer.Get("Grpc-Message"))
			}
			return nil, err
		}
		payload := make([]byte, binary.BigEndian.Uint32(prefix[1:]))
		if _, err := io.ReadFull(res.Body, payload); err != nil {
			return nil, err
		}
		flags := prefix[0]
		if compressed := flags&flagCompressed != 0; compressed != cell.gzip {
			return nil, fmt.Errorf("frame compressed=%v (response encoding %q), want %v", compressed, respEnc, cell.gzip)
		}
		if flags&flagCompressed != 0 {
			if respEnc != "gzip" {
				return nil, fmt.Errorf("compressed frame with response encoding %q", respEnc)
			}
			zr, err := gzip.NewReader(bytes.NewReader(payload))
			if err != nil {
				return nil, err
			}
			if payload, err = io.ReadAll(zr); err != nil {
				return nil, err
			}
		}
		switch {
		case cell.protocol == connect.ProtocolConnect && flags&flagConnectEnd != 0:
			var end struct {
				Error json.RawMessage `json:"error"`
			}
			_ = json.Unmarshal(payload, &end)
			return nil, fmt.Errorf("stream ended: %s", end.Error)
		case cell.protocol == connect.ProtocolGRPCWeb && flags&flagGRPCWebTrail != 0:
			return nil, fmt.Errorf("stream ended: %q", payload)
		}
		frame := new(realtimev1.SubscribeResponse)
		if err := decode(payload, frame); err != nil {
			return nil, fmt.Errorf("decode %q: %w", payload, err)
		}
		return frame, nil
	}
	return runWire(s, recv, func() { res.Body.Close() })
}

func gzipBytes(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
