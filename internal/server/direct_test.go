package server_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/honeydo/realtime/client"
	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	"github.com/honeydo/realtime/gen/honeydo/realtime/v1/realtimev1connect"
	"github.com/honeydo/realtime/internal/metrics"
	"github.com/honeydo/realtime/internal/server"
	"github.com/honeydo/realtime/internal/testkit"
	"github.com/honeydo/realtime/internal/testkit/poll"
	"github.com/honeydo/realtime/internal/testkit/syncbuf"
)

const subscribeProcedure = "honeydo.realtime.v1.RealtimeService/Subscribe"

// rpcDurations is the series of Subscribe's RPC duration histogram with
// code, as metrics.Gather names it.
func rpcDurations(code string) string {
	return fmt.Sprintf("realtime_rpc_duration_seconds{code=%s,procedure=%s,type=server_stream}_count", code, subscribeProcedure)
}

// TestDirectStreams: an HTTP/1.1 stream leaves its handler once its welcome
// is out (a direct stream) in every HTTP/1.1 protocol and codec. It
// delivers events and heartbeats; the RPC metrics record its real end, not the hand-off; the client leaving
// releases it, and an expired token ends it with Unauthenticated; nothing
// is left running.
func TestDirectStreams(t *testing.T) {
	for _, kind := range clientKinds {
		if kind.h2c {
			continue
		}
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel()
			var logs syncbuf.Buffer
			m := metrics.New()
			srv := newTestServer(t, func(c *server.Config) {
				c.Metrics = m
				c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
				c.Heartbeat = 200 * time.Millisecond
				c.TokenGrace = time.Millisecond
			})
			gauge := func(name string) float64 {
				got, err := m.Gather()
				if err != nil {
					t.Fatal(err)
				}
				return got[name]
			}
			base := runtime.NumGoroutine()
			c := srv.realtimeClient(t, kind, srv.Token(t, "alice", "home", time.Hour))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			rs, err := c.Subscribe(ctx, connect.NewRequest(&realtimev1.SubscribeRequest{}))
			if err != nil {
				t.Fatal(err)
			}
			defer rs.Close()
			if !rs.Receive() || rs.Msg().GetWelcome() == nil {
				t.Fatalf("no welcome: %v", rs.Err())
			}
			for i := range 3 {
				if _, err := srv.Emitter.ToUser(ctx, "alice", notification(fmt.Sprint(i))); err != nil {
					t.Fatal(err)
				}
			}
			var got []string
			beats := 0
			for len(got) < 3 || beats < 2 {
				if !rs.Receive() {
					t.Fatalf("stream ended after %q and %d heartbeats: %v", got, beats, rs.Err())
				}
				for _, ev := range rs.Msg().GetEvents().GetEvents() {
					got = append(got, ev.GetNotification().GetMessage())
				}
				if rs.Msg().GetHeartbeat() != nil {
					beats++
				}
			}
			if strings.Join(got, ",") != "0,1,2" {
				t.Fatalf("events %q", got)
			}
			// The hand-off is not the end of the call.
			if n := gauge(rpcDurations("ok")); n != 0 {
				t.Fatalf("an open stream recorded as ended ok (%v)", n)
			}
			cancel()
			poll.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
				if n := srv.OpenStreams(); n != 0 {
					return fmt.Errorf("%d open streams after the client left", n)
				}
				if n := gauge(rpcDurations("canceled")); n != 1 {
					return fmt.Errorf("%v streams recorded as canceled, want 1", n)
				}
				return nil
			})
			if !strings.Contains(logs.String(), "reason=client_gone events=3") || !strings.Contains(logs.String(), "direct=true") {
				t.Fatalf("no closing log line of a direct stream in\n%s", logs.String())
			}

			short := srv.realtimeClient(t, kind, srv.Token(t, "alice", "home", time.Second))
			s := subscribe(t, short, "")
			wantCode(t, s.end(t, 20*time.Second), connect.CodeUnauthenticated)
			poll.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
				if n := gauge(rpcDurations("unauthenticated")); n != 1 {
					return fmt.Errorf("%v streams recorded as unauthenticated, want 1", n)
				}
				return nil
			})
			if n := gauge(rpcDurations("ok")); n != 0 {
				t.Fatalf("%v streams recorded as ended ok", n)
			}
			waitGoroutines(t, base)
		})
	}
}

// TestDirectStreamEndsAsConnectDoes ends HTTP/1.1 streams, direct and kept
// in their handlers, by token expiry and by shutdown, in every protocol and
// codec that can go direct, with and without gzip, and compares what the
// client reads: the same frames, and the same end of stream, byte for byte.
// A direct stream's response says Connection: close, and the server closes
// the connection once the stream ends.
func TestDirectStreamEndsAsConnectDoes(t *testing.T) {
	type cell struct {
		contentType string
		web, gzip   bool
	}
	var cells []cell
	for _, ct := range []string{"application/connect+proto", "application/connect+json", "application/grpc-web+proto", "application/grpc-web+json; charset=utf-8"} {
		for _, gz := range []bool{false, true} {
			cells = append(cells, cell{ct, strings.Contains(ct, "grpc-web"), gz})
		}
	}
	for _, ending := range []string{"token expiry", "shutdown"} {
		t.Run(ending, func(t *testing.T) {
			t.Parallel()
			ends := map[bool][]rawEnd{}
			for _, direct := range []bool{true, false} {
				srv := newTestServer(t, func(c *server.Config) {
					c.NoDirectStreams = !direct
					c.TokenGrace = time.Millisecond
					c.CompressMinBytes = 1 // every frame compressed when gzip is on
				})
				ttl := time.Hour
				if ending == "token expiry" {
					ttl = 2 * time.Second
				}
				done := make(chan rawEnd, len(cells))
				for i, c := range cells {
					user := fmt.Sprint("u", i)
					go func() { done <- rawSubscribe(srv, c.contentType, c.web, c.gzip, srv.Token(t, user, "home", ttl)) }()
				}
				poll.Eventually(t, 20*time.Second, 10*time.Millisecond, func() error {
					if n := srv.OpenStreams(); n != len(cells) {
						return fmt.Errorf("%d of %d streams open", n, len(cells))
					}
					return nil
				})
				if ending == "shutdown" {
					srv.Stop()
				}
				byType := map[string]rawEnd{}
				for range cells {
					select {
					case e := <-done:
						if e.err != nil {
							t.Fatalf("direct=%v %s: %v", direct, e.key, e.err)
						}
						byType[e.key] = e
					case <-time.After(30 * time.Second):
						t.Fatalf("direct=%v: streams did not end", direct)
					}
				}
				for _, c := range cells {
					ends[direct] = append(ends[direct], byType[rawKey(c.contentType, c.gzip)])
				}
			}
			for i, c := range cells {
				d, k := ends[true][i], ends[false][i]
				if !d.closed || !d.connClose {
					t.Errorf("%s gzip=%v: the direct stream's connection: closed %v, Connection: close %v", c.contentType, c.gzip, d.closed, d.connClose)
				}
				if d.frames != k.frames || d.welcomeType != k.welcomeType {
					t.Errorf("%s gzip=%v: direct read %d frames (%s), kept %d (%s)", c.contentType, c.gzip, d.frames, d.welcomeType, k.frames, k.welcomeType)
				}
				if d.endFlags != k.endFlags || !bytes.Equal(d.end, k.end) {
					t.Errorf("%s gzip=%v: end of stream\n direct %#x %q\n   kept %#x %q", c.contentType, c.gzip, d.endFlags, d.end, k.endFlags, k.end)
				}
				if len(d.end) == 0 {
					t.Errorf("%s gzip=%v: empty end of stream", c.contentType, c.gzip)
				}
			}
		})
	}
}

// rawEnd is what a raw HTTP/1.1 Subscribe read to its end.
type rawEnd struct {
	key         string
	frames      int    // envelopes before the end of stream
	welcomeType string // the first frame's Go type
	endFlags    byte
	end         []byte // the end of stream, decompressed
	closed      bool   // the server closed the connection after the response
	connClose   bool   // the response said Connection: close
	err         error
}

func rawKey(contentType string, gz bool) string { return fmt.Sprintf("%s gzip=%v", contentType, gz) }

// rawSubscribe subscribes over its own HTTP/1.1 connection with a request
// written by hand and reads the response to its end and then the
// connection to EOF (the server closes it) or to a second of silence.
func rawSubscribe(srv *testServer, contentType string, web, gz bool, token string) (out rawEnd) {
	out.key = rawKey(contentType, gz)
	conn, err := net.Dial("tcp", srv.Addr)
	if err != nil {
		out.err = err
		return out
	}
	defer conn.Close()
	var body []byte
	if strings.Contains(contentType, "json") {
		body = []byte("{}")
	}
	msg := binary.BigEndian.AppendUint32([]byte{0}, uint32(len(body)))
	msg = append(msg, body...)
	enc, acceptEnc := "Connect-Content-Encoding", "Connect-Accept-Encoding"
	if web {
		enc, acceptEnc = "Grpc-Encoding", "Grpc-Accept-Encoding"
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+realtimev1connect.RealtimeServiceSubscribeProcedure, bytes.NewReader(msg))
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", "Bearer "+token)
	if gz {
		req.Header.Set(acceptEnc, "gzip")
	}
	if err := req.Write(conn); err != nil {
		out.err = err
		return out
	}
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, req)
	if err != nil {
		out.err = err
		return out
	}
	if res.StatusCode != http.StatusOK {
		out.err = fmt.Errorf("HTTP %s", res.Status)
		return out
	}
	respGzip := res.Header.Get(enc) == "gzip"
	out.connClose = res.Close
	for {
		var prefix [5]byte
		if _, err := io.ReadFull(res.Body, prefix[:]); err != nil {
			out.err = fmt.Errorf("body ended without an end of stream: %w", err)
			return out
		}
		p := make([]byte, binary.BigEndian.Uint32(prefix[1:]))
		if _, err := io.ReadFull(res.Body, p); err != nil {
			out.err = err
			return out
		}
		if prefix[0]&0x01 != 0 {
			if !respGzip {
				out.err = errors.New("compressed frame without gzip")
				return out
			}
			zr, err := gzip.NewReader(bytes.NewReader(p))
			if err == nil {
				p, err = io.ReadAll(zr)
			}
			if err != nil {
				out.err = err
				return out
			}
		}
		if prefix[0]&^0x01 != 0 {
			out.endFlags, out.end = prefix[0], p
			break
		}
		if out.frames == 0 {
			var frame realtimev1.SubscribeResponse
			if strings.Contains(contentType, "json") {
				// The frame's type is all the test compares.
				out.welcomeType = fmt.Sprint(bytes.Contains(p, []byte(`"welcome"`)))
			} else if err := proto.Unmarshal(p, &frame); err == nil {
				out.welcomeType = fmt.Sprintf("%T", frame.GetFrame())
			}
		}
		out.frames++
	}
	if rest, err := io.ReadAll(res.Body); err != nil || len(rest) != 0 {
		out.err = fmt.Errorf("after the end of stream: %q, %v", rest, err)
		return out
	}
	_ = conn.SetReadDeadline(time.Now().Add(time.Second))
	_, err = br.ReadByte()
	out.closed = errors.Is(err, io.EOF)
	return out
}

// TestStreamsStayOnConnectWithoutHijack: behind middleware whose
// ResponseWriter cannot be hijacked (an embedding application's, say), an
// HTTP/1.1 stream stays in its handler and works as before.
func TestStreamsStayOnConnectWithoutHijack(t *testing.T) {
	var logs syncbuf.Buffer
	srv := newTestServer(t, func(c *server.Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		c.TokenGrace = time.Millisecond
	})
	wrapped := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		srv.Handler().ServeHTTP(plainWriter{w}, r)
	}))
	defer wrapped.Close()
	for _, kind := range clientKinds {
		if kind.h2c {
			continue
		}
		t.Run(kind.name, func(t *testing.T) {
			opts := append([]connect.ClientOption{client.BearerToken(srv.Token(t, "bob", "home", 2*time.Second))}, kind.protocol...)
			c := realtimev1connect.NewRealtimeServiceClient(testkit.HTTPClient(t, false), wrapped.URL, opts...)
			s := subscribe(t, c, "")
			if _, err := srv.Emitter.ToUser(context.Background(), "bob", notification("kept")); err != nil {
				t.Fatal(err)
			}
			if got := s.next(t).GetNotification().GetMessage(); got != "kept" {
				t.Fatalf("event %q", got)
			}
			wantCode(t, s.end(t, 20*time.Second), connect.CodeUnauthenticated)
		})
	}
	poll.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		if n := strings.Count(logs.String(), "stream closed"); n != 3 {
			return fmt.Errorf("%d streams closed, want 3", n)
		}
		return nil
	})
	if strings.Contains(logs.String(), "direct=true") {
		t.Fatalf("a stream went direct without a hijackable writer:\n%s", logs.String())
	}
}

// plainWriter is a ResponseWriter with Flush and nothing else.
type plainWriter struct{ w http.ResponseWriter }

func (p plainWriter) Header() http.Header         { return p.w.Header() }
func (p plainWriter) Write(b []byte) (int, error) { return p.w.Write(b) }
func (p plainWriter) WriteHeader(code int)        { p.w.WriteHeader(code) }
func (p plainWriter) Flush()                      { p.w.(http.Flusher).Flush() }
