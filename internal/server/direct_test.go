package server_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/honeydo/realtime/client"
	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	"github.com/honeydo/realtime/gen/honeydo/realtime/v1/realtimev1connect"
	"github.com/honeydo/realtime/internal/clienttls"
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

// TestDirectStreams: a stream leaves Connect's handler once its welcome is
// out (a direct stream) in every protocol, codec and HTTP version. It
// delivers events and heartbeats; the RPC metrics record its real end, not
// the hand-off; the client leaving releases it, and an expired token ends
// it with Unauthenticated; nothing is left running.
func TestDirectStreams(t *testing.T) {
	for _, kind := range clientKinds {
		// One at a time: the test counts the server's direct-stream
		// goroutines, which the process's other streams would add to.
		t.Run(kind.name, func(t *testing.T) {
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
			// One client for both streams, whose idle connection (h2c's
			// outlives its streams) is closed before goroutines are counted.
			hc := testkit.HTTPClient(t, kind.h2c)
			newClient := func(token string) realtimev1connect.RealtimeServiceClient {
				return realtimev1connect.NewRealtimeServiceClient(hc, srv.URL, append([]connect.ClientOption{client.BearerToken(token)}, kind.protocol...)...)
			}
			c := newClient(srv.Token(t, "alice", "home", time.Hour))
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

			// Minted tokens' times are whole seconds: this one has 1-2s left.
			short := newClient(srv.Token(t, "alice", "home", 2*time.Second))
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
			poll.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
				if n := directGoroutines(); n != 0 {
					return fmt.Errorf("%d direct-stream goroutines left", n)
				}
				return nil
			})
			hc.CloseIdleConnections()
			waitGoroutines(t, base)
		})
	}
}

// directGoroutines counts the goroutines of direct streams: the runners,
// running a stream or waiting for one (they end after a second without),
// and the watches that have a goroutine each (not the shared epoll one).
func directGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "server.(*runners).loop(") || strings.Contains(g, "connwatch.(*goroutineWatch).run(") {
			count++
		}
	}
	return count
}

// waitParked waits for n direct streams, parked: with no goroutine of
// their own, nor their watches (a client sees its welcome before its
// stream goes direct).
func waitParked(t *testing.T, srv *testServer, n int) {
	t.Helper()
	poll.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		if got := server.DirectStreams(srv.Server.Server); got != n {
			return fmt.Errorf("%d direct streams of %d", got, n)
		}
		if got := directGoroutines(); got != 0 {
			return fmt.Errorf("%d direct-stream goroutines for %d idle streams, want none", got, n)
		}
		return nil
	})
}

// TestIdleDirectStreamsHaveNoGoroutine: a parked direct stream has no
// goroutine, nor does the watch that notices its client leaving, whether
// its connection is exempt from the connection budgets (loopback, by
// default) or counted against them (wrapped by the budget listener).
func TestIdleDirectStreamsHaveNoGoroutine(t *testing.T) {
	for _, tc := range []struct {
		name   string
		exempt []netip.Prefix
	}{
		{name: "exempt"},
		{name: "budgeted", exempt: []netip.Prefix{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newTestServer(t, func(c *server.Config) {
				if tc.exempt != nil {
					c.ConnLimits.Exempt = tc.exempt
				}
			})
			const n = 3
			for i := range n {
				subscribe(t, srv.realtimeClient(t, clientKinds[0], srv.Token(t, fmt.Sprint("u", i), "home", time.Minute)), "")
			}
			waitParked(t, srv, n)
		})
	}
}

// TestShutdownWaitsForDirectStreams: Shutdown returns only once every
// direct stream has written its end (Unavailable) and its goroutines are
// gone, though net/http no longer tracks their connections.
func TestShutdownWaitsForDirectStreams(t *testing.T) {
	srv := newTestServer(t)
	const n = 50
	streams := make([]*stream, n)
	for i := range streams {
		kind := clientKinds[0]
		if i%2 == 1 {
			kind = clientKinds[4] // gRPC-Web over HTTP/1.1
		}
		streams[i] = subscribe(t, srv.realtimeClient(t, kind, srv.Token(t, fmt.Sprint("u", i), "home", time.Minute)), "")
	}
	waitParked(t, srv, n)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if got := server.DirectStreams(srv.Server.Server); got != 0 {
		t.Fatalf("Shutdown returned with %d direct streams", got)
	}
	poll.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		if got := directGoroutines(); got != 0 {
			return fmt.Errorf("%d direct-stream goroutines after Shutdown", got)
		}
		return nil
	})
	for _, s := range streams {
		wantCode(t, s.end(t, 30*time.Second), connect.CodeUnavailable)
	}
}

// TestHTTP10StreamsStayOnConnect: an HTTP/1.0 response has no chunked
// encoding (its body ends with the connection), so an HTTP/1.0 stream, as
// a proxy speaking HTTP/1.0 to its backends sends it, stays in its handler
// and reads whole frames.
func TestHTTP10StreamsStayOnConnect(t *testing.T) {
	srv := newTestServer(t)
	conn, err := net.Dial("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msg := []byte{0, 0, 0, 0, 0} // an empty SubscribeRequest
	fmt.Fprintf(conn, "POST %s HTTP/1.0\r\nHost: %s\r\nContent-Type: application/connect+proto\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s",
		realtimev1connect.RealtimeServiceSubscribeProcedure, srv.Addr, srv.Token(t, "old", "home", time.Minute), len(msg), msg)
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, &http.Request{Method: http.MethodPost})
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK || len(res.TransferEncoding) != 0 {
		t.Fatalf("HTTP %s, transfer encoding %v", res.Status, res.TransferEncoding)
	}
	readFrame := func() *realtimev1.SubscribeResponse {
		t.Helper()
		var prefix [5]byte
		if _, err := io.ReadFull(res.Body, prefix[:]); err != nil {
			t.Fatal(err)
		}
		p := make([]byte, binary.BigEndian.Uint32(prefix[1:]))
		if _, err := io.ReadFull(res.Body, p); err != nil {
			t.Fatal(err)
		}
		var f realtimev1.SubscribeResponse
		if prefix[0] != 0 || proto.Unmarshal(p, &f) != nil {
			t.Fatalf("frame %#x %q", prefix[0], p)
		}
		return &f
	}
	if readFrame().GetWelcome() == nil {
		t.Fatal("first frame is not the welcome")
	}
	if _, err := srv.Emitter.ToUser(context.Background(), "old", notification("over HTTP/1.0")); err != nil {
		t.Fatal(err)
	}
	for {
		f := readFrame()
		if f.GetHeartbeat() != nil {
			continue
		}
		if got := f.GetEvents().GetEvents()[0].GetNotification().GetMessage(); got != "over HTTP/1.0" {
			t.Fatalf("event %q", got)
		}
		break
	}
}

// TestDirectStreamEndsAsConnectDoes ends streams, direct and kept in their
// handlers, by token expiry and by shutdown, in every protocol and codec
// that can go direct, over HTTP/1.1 and h2c, with and without gzip, and
// compares what the client reads: the same frames, and the same end of
// stream, byte for byte (gRPC's trailers over h2c). A direct HTTP/1.1
// stream's response says Connection: close, and the server closes the
// connection once the stream ends.
func TestDirectStreamEndsAsConnectDoes(t *testing.T) {
	type cell struct {
		contentType string
		gzip        bool
	}
	for _, h2c := range []bool{false, true} {
		types := []string{"application/connect+proto", "application/connect+json", "application/grpc-web+proto", "application/grpc-web+json; charset=utf-8"}
		if h2c {
			types = append(types, "application/grpc", "application/grpc+json")
		}
		var cells []cell
		for _, ct := range types {
			for _, gz := range []bool{false, true} {
				cells = append(cells, cell{ct, gz})
			}
		}
		for _, ending := range []string{"token expiry", "shutdown"} {
			t.Run(fmt.Sprintf("h2c=%v/%s", h2c, ending), func(t *testing.T) {
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
						// Time to open every stream and see it go direct.
						ttl = 5 * time.Second
					}
					hc := testkit.HTTPClient(t, true)
					done := make(chan rawEnd, len(cells))
					for i, c := range cells {
						token := srv.Token(t, fmt.Sprint("u", i), "home", ttl)
						go func() {
							if h2c {
								done <- h2cSubscribe(srv, hc, c.contentType, c.gzip, token)
							} else {
								done <- rawSubscribe(srv, c.contentType, c.gzip, token)
							}
						}()
					}
					poll.Eventually(t, 20*time.Second, 10*time.Millisecond, func() error {
						if n := srv.OpenStreams(); n != len(cells) {
							return fmt.Errorf("%d of %d streams open", n, len(cells))
						}
						return nil
					})
					if direct {
						// Every stream goes direct: the comparison is of the two paths.
						poll.Eventually(t, 20*time.Second, 10*time.Millisecond, func() error {
							if n := server.DirectStreams(srv.Server.Server); n != len(cells) {
								return fmt.Errorf("%d of %d streams direct", n, len(cells))
							}
							return nil
						})
					}
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
					if !h2c && (!d.closed || !d.connClose) {
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
}

// rawEnd is what a raw Subscribe read to its end.
type rawEnd struct {
	key         string
	frames      int    // envelopes before the end of stream
	welcomeType string // the first frame's Go type
	endFlags    byte
	end         []byte // the end of stream, decompressed; gRPC's trailers
	closed      bool   // the server closed the connection after the response
	connClose   bool   // the response said Connection: close
	err         error
}

func rawKey(contentType string, gz bool) string { return fmt.Sprintf("%s gzip=%v", contentType, gz) }

// rawSubscribe subscribes over its own HTTP/1.1 connection with a request
// written by hand and reads the response to its end and then the
// connection to EOF (the server closes it) or to a second of silence.
func rawSubscribe(srv *testServer, contentType string, gz bool, token string) (out rawEnd) {
	out.key = rawKey(contentType, gz)
	conn, err := net.Dial("tcp", srv.Addr)
	if err != nil {
		out.err = err
		return out
	}
	defer conn.Close()
	req, enc := subscribeRequest(srv, contentType, gz, token)
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
	out.connClose = res.Close
	if out.err = readEnvelopes(res.Body, contentType, res.Header.Get(enc) == "gzip", &out); out.err != nil {
		return out
	}
	_ = conn.SetReadDeadline(time.Now().Add(time.Second))
	_, err = br.ReadByte()
	out.closed = errors.Is(err, io.EOF)
	return out
}

// h2cSubscribe subscribes over hc, an h2c client, and reads the response
// to its end; a gRPC stream's end is its trailers, as "name: value" lines.
func h2cSubscribe(srv *testServer, hc *http.Client, contentType string, gz bool, token string) (out rawEnd) {
	out.key = rawKey(contentType, gz)
	req, enc := subscribeRequest(srv, contentType, gz, token)
	res, err := hc.Do(req)
	if err != nil {
		out.err = err
		return out
	}
	defer res.Body.Close()
	if res.ProtoMajor != 2 || res.StatusCode != http.StatusOK {
		out.err = fmt.Errorf("%s %s", res.Proto, res.Status)
		return out
	}
	if out.err = readEnvelopes(res.Body, contentType, res.Header.Get(enc) == "gzip", &out); out.err != nil {
		return out
	}
	if isGRPC(contentType) {
		var lines []string
		for name, values := range res.Trailer {
			lines = append(lines, name+": "+strings.Join(values, ","))
		}
		slices.Sort(lines)
		out.end = []byte(strings.Join(lines, "\n"))
	}
	return out
}

// subscribeRequest is a Subscribe request written by hand: an empty
// request message in contentType's protocol, with gzip accepted if gz. enc
// is the response header that names the response's compression.
func subscribeRequest(srv *testServer, contentType string, gz bool, token string) (req *http.Request, enc string) {
	var body []byte
	if strings.Contains(contentType, "json") {
		body = []byte("{}")
	}
	msg := binary.BigEndian.AppendUint32([]byte{0}, uint32(len(body)))
	msg = append(msg, body...)
	enc, acceptEnc := "Connect-Content-Encoding", "Connect-Accept-Encoding"
	if strings.HasPrefix(contentType, "application/grpc") { // gRPC and gRPC-Web
		enc, acceptEnc = "Grpc-Encoding", "Grpc-Accept-Encoding"
	}
	req, _ = http.NewRequest(http.MethodPost, srv.URL+realtimev1connect.RealtimeServiceSubscribeProcedure, bytes.NewReader(msg))
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", "Bearer "+token)
	if gz {
		req.Header.Set(acceptEnc, "gzip")
	}
	return req, enc
}

// isGRPC says whether contentType is gRPC's (not gRPC-Web's).
func isGRPC(contentType string) bool {
	return strings.HasPrefix(contentType, "application/grpc") && !strings.Contains(contentType, "grpc-web")
}

// readEnvelopes reads a Subscribe response's body to its end into out: its
// frames, and its end of stream unless the protocol is gRPC, whose body
// ends without one.
func readEnvelopes(body io.Reader, contentType string, respGzip bool, out *rawEnd) error {
	grpc := isGRPC(contentType)
	for {
		var prefix [5]byte
		if _, err := io.ReadFull(body, prefix[:]); err != nil {
			if grpc && err == io.EOF {
				return nil
			}
			return fmt.Errorf("body ended without an end of stream: %w", err)
		}
		p := make([]byte, binary.BigEndian.Uint32(prefix[1:]))
		if _, err := io.ReadFull(body, p); err != nil {
			return err
		}
		if prefix[0]&0x01 != 0 {
			if !respGzip {
				return errors.New("compressed frame without gzip")
			}
			zr, err := gzip.NewReader(bytes.NewReader(p))
			if err == nil {
				p, err = io.ReadAll(zr)
			}
			if err != nil {
				return err
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
	if rest, err := io.ReadAll(body); err != nil || len(rest) != 0 {
		return fmt.Errorf("after the end of stream: %q, %v", rest, err)
	}
	return nil
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

// TestDirectStreamStuckRightAfterWelcome: a client that stops reading at
// once is dropped by the write timeout too. Hijacking clears the
// connection's deadlines, so a direct stream must set its own before its
// first write, not only when the deadline it set before the hand-off
// would have needed renewing.
func TestDirectStreamStuckRightAfterWelcome(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, func(c *server.Config) {
		c.QueueSize = 1 << 20 // never a slow-consumer cut: the write timeout must act
		c.Heartbeat = time.Second
		c.StreamWriteTimeout = 2 * time.Second // renewed only in the last 2 of 2.5s
	})
	ctx := context.Background()
	token := srv.Token(t, "stuck", "home", time.Minute)
	first := subscribe(t, srv.realtimeClient(t, clientKinds[0], token), "")
	cursor := first.Welcome.GetCursor()
	first.Close()
	// More than the socket buffers hold, waiting in history: the resumed
	// stream writes it right after its welcome, into a client that never
	// reads, and blocks at once.
	big := incompressible(64 << 10)
	for range 200 {
		if _, err := srv.Emitter.ToUser(ctx, "stuck", notification(big)); err != nil {
			t.Fatal(err)
		}
	}
	c := realtimev1connect.NewRealtimeServiceClient(tinyWindowClient(t), srv.URL, client.BearerToken(token))
	rs, err := c.Subscribe(ctx, connect.NewRequest(&realtimev1.SubscribeRequest{ResumeCursor: cursor}))
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	if !rs.Receive() {
		t.Fatal(rs.Err())
	}
	poll.Eventually(t, 30*time.Second, 20*time.Millisecond, func() error {
		if n := srv.OpenStreams(); n != 0 {
			return fmt.Errorf("%d streams open", n)
		}
		return nil
	})
}

// TestDirectStreamOverTLS: a TLS client that speaks only HTTP/1.1 (no h2
// in ALPN) gets a direct stream on the TLS connection: events arrive, and
// when the client leaves, the stream and its goroutines are gone.
func TestDirectStreamOverTLS(t *testing.T) {
	var logs syncbuf.Buffer
	srv := testkit.StartTLSServer(t, func(c *server.Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	tr := &http.Transport{TLSClientConfig: trustServer(t, srv), Protocols: protocols}
	defer tr.CloseIdleConnections()
	var proto string
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		res, err := tr.RoundTrip(r)
		if err == nil {
			proto = res.Proto
		}
		return res, err
	})}
	c := realtimev1connect.NewRealtimeServiceClient(hc, srv.URL, client.BearerToken(srv.Token(t, "tls", "home", time.Minute)))
	s := subscribe(t, c, "")
	if proto != "HTTP/1.1" {
		t.Fatalf("the stream's response came over %s, want HTTP/1.1", proto)
	}
	if _, err := srv.Emitter.ToUser(context.Background(), "tls", notification("over tls, direct")); err != nil {
		t.Fatal(err)
	}
	if got := s.next(t).GetNotification().GetMessage(); got != "over tls, direct" {
		t.Fatalf("event %q", got)
	}
	if server.DirectStreams(srv.Server) != 1 {
		t.Fatal("the stream did not go direct")
	}
	s.Close()
	poll.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		if n := srv.OpenStreams(); n != 0 {
			return fmt.Errorf("%d open streams after the client left", n)
		}
		if n := directGoroutines(); n != 0 {
			return fmt.Errorf("%d direct-stream goroutines left", n)
		}
		return nil
	})
	if !strings.Contains(logs.String(), "reason=client_gone events=1") || !strings.Contains(logs.String(), "direct=true") {
		t.Fatalf("no closing log line of a direct stream in\n%s", logs.String())
	}
}

// TestDirectStreamEndsOnPipelinedRequest: an HTTP/1.1 client that sends
// another request behind its Subscribe (pipelining) cannot be answered on
// a streaming connection; the stream ends with FailedPrecondition saying
// why, instead of leaving that request unanswered on an open connection.
func TestDirectStreamEndsOnPipelinedRequest(t *testing.T) {
	for _, tc := range []struct {
		name string
		tls  bool
		// later: the second request comes once the stream is direct (its
		// first heartbeat arrived), for the watch to notice; else both
		// come in one write, and the second is in the server's buffer when
		// the stream takes the connection.
		later bool
	}{
		{name: "in one write"},
		{name: "later", later: true},
		{name: "later over TLS", tls: true, later: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			heartbeat := func(c *server.Config) { c.Heartbeat = 100 * time.Millisecond }
			var srv *testkit.Server
			var conn net.Conn
			var err error
			if tc.tls {
				srv = testkit.StartTLSServer(t, heartbeat)
				cfg := trustServer(t, srv)
				cfg.NextProtos = []string{"http/1.1"}
				conn, err = tls.Dial("tcp", srv.Addr, cfg)
			} else {
				srv = newTestServer(t, heartbeat).Server
				conn, err = net.Dial("tcp", srv.Addr)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			get := "GET /healthz HTTP/1.1\r\nHost: " + srv.Addr + "\r\n\r\n"
			behind := get
			if tc.later {
				behind = ""
			}
			body := subscribeRaw(t, conn, srv, "pipe", behind)
			if tc.later {
				for readFrame(t, body).GetHeartbeat() == nil { // the stream is direct
				}
				if _, err := io.WriteString(conn, get); err != nil {
					t.Fatal(err)
				}
			}
			// The end of stream and of the body follow: no heartbeat every
			// few seconds for a client that cannot be served.
			wantPipelinedEnd(t, body)
			poll.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
				if n := srv.OpenStreams(); n != 0 {
					return fmt.Errorf("%d open streams", n)
				}
				return nil
			})
		})
	}
}

// TestDirectStreamOverTLSWaitsForAWholeRecord: over TLS the watch sees
// bytes, not requests, and the stream reads the connection for a second
// to tell a close from a request. A record that has not all arrived by
// then (here, a pipelined request's, cut after its header for over two
// seconds) is neither: the stream goes on, and ends with
// FailedPrecondition once the request is whole.
func TestDirectStreamOverTLSWaitsForAWholeRecord(t *testing.T) {
	srv := testkit.StartTLSServer(t, func(c *server.Config) { c.Heartbeat = 100 * time.Millisecond })
	raw, err := net.Dial("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	split := &splitConn{Conn: raw}
	cfg := trustServer(t, srv)
	cfg.ServerName, cfg.NextProtos = "127.0.0.1", []string{"http/1.1"}
	conn := tls.Client(split, cfg)
	defer conn.Close()
	body := subscribeRaw(t, conn, srv, "tls", "")
	for readFrame(t, body).GetHeartbeat() == nil { // the stream is direct
	}
	release := make(chan struct{})
	split.hold.Store(&release)
	wrote := make(chan error, 1)
	go func() {
		_, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: "+srv.Addr+"\r\n\r\n")
		wrote <- err
	}()
	// Frames go on arriving while the record is cut, past the second the
	// stream reads for.
	for cut := time.Now(); time.Since(cut) < 2500*time.Millisecond; {
		if readFrame(t, body).GetHeartbeat() == nil {
			t.Fatal("a frame other than a heartbeat")
		}
	}
	close(release)
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	wantPipelinedEnd(t, body)
}

// splitConn, once hold is set, writes the next write's first 5 bytes (a
// TLS record's header) and the rest only when hold's channel closes.
type splitConn struct {
	net.Conn
	hold atomic.Pointer[chan struct{}]
}

func (c *splitConn) Write(p []byte) (int, error) {
	release := c.hold.Swap(nil)
	if release == nil || len(p) <= 5 {
		return c.Conn.Write(p)
	}
	n, err := c.Conn.Write(p[:5])
	if err != nil {
		return n, err
	}
	<-*release
	m, err := c.Conn.Write(p[5:])
	return n + m, err
}

// trustServer returns a client TLS configuration that trusts srv's
// certificate, as realtimectl's --ca-file does.
func trustServer(t *testing.T, srv *testkit.Server) *tls.Config {
	t.Helper()
	cfg, err := clienttls.Flags{CAFile: srv.CAFile}.Config(srv.URL, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// subscribeRaw sends a Connect Subscribe request on conn as user, with
// behind (another request, or nothing) in the same write, and returns the
// body of its 200 response.
func subscribeRaw(t *testing.T, conn net.Conn, srv *testkit.Server, user, behind string) io.Reader {
	t.Helper()
	msg := []byte{0, 0, 0, 0, 0}
	req := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/connect+proto\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s",
		realtimev1connect.RealtimeServiceSubscribeProcedure, srv.Addr, srv.Token(t, user, "home", time.Minute), len(msg), msg)
	if _, err := io.WriteString(conn, req+behind); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: http.MethodPost})
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("HTTP %s", res.Status)
	}
	return res.Body
}

// readFrame reads one uncompressed Connect envelope from r, a frame of a
// Subscribe stream.
func readFrame(t *testing.T, r io.Reader) *realtimev1.SubscribeResponse {
	t.Helper()
	var head [5]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		t.Fatalf("reading an envelope: %v", err)
	}
	msg := make([]byte, binary.BigEndian.Uint32(head[1:]))
	if _, err := io.ReadFull(r, msg); err != nil {
		t.Fatalf("reading an envelope: %v", err)
	}
	var m realtimev1.SubscribeResponse
	if err := proto.Unmarshal(msg, &m); err != nil {
		t.Fatal(err)
	}
	return &m
}

// wantPipelinedEnd reads the rest of a stream's body and wants it to end
// cleanly, with the end of stream of a pipelined request's
// FailedPrecondition.
func wantPipelinedEnd(t *testing.T, body io.Reader) {
	t.Helper()
	rest, err := io.ReadAll(body)
	if err != nil {
		t.Fatalf("the stream did not end cleanly: %v", err)
	}
	var last []byte
	var flags byte
	for len(rest) >= 5 {
		n := int(binary.BigEndian.Uint32(rest[1:5]))
		flags, last, rest = rest[0], rest[5:5+n], rest[5+n:]
	}
	if flags != 0x02 || !bytes.Contains(last, []byte(`"code":"failed_precondition"`)) || !bytes.Contains(last, []byte("connection of its own")) {
		t.Fatalf("end of stream %#x %s", flags, last)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// goroutinesWith counts the goroutines whose stack mentions every one of
// frames.
func goroutinesWith(frames ...string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
next:
	for _, g := range strings.Split(string(buf), "\n\n") {
		for _, f := range frames {
			if !strings.Contains(g, f) {
				continue next
			}
		}
		count++
	}
	return count
}

// parkedHandlerFrame is in the stack of an HTTP/2 direct stream's handler
// goroutine while the stream lives.
const parkedHandlerFrame = ".detachable.func"

// TestIdleHTTP2StreamsParkOutsideConnect: an idle HTTP/2 direct stream's
// handler goroutine waits in detachable, above Connect's handler, which
// has returned: its stack holds none of Connect's frames (nor the gate's
// or ours), and nothing else runs for the stream.
func TestIdleHTTP2StreamsParkOutsideConnect(t *testing.T) {
	srv := newTestServer(t)
	var n int
	for _, kind := range clientKinds {
		if !kind.h2c {
			continue
		}
		for i := range 5 {
			subscribe(t, srv.realtimeClient(t, kind, srv.Token(t, fmt.Sprint(kind.name, i), "home", time.Hour)), "")
			n++
		}
	}
	waitParked(t, srv, n)
	if got := goroutinesWith(parkedHandlerFrame); got != n {
		t.Fatalf("%d handler goroutines parked in detachable, want %d", got, n)
	}
	for _, frame := range []string{"connectrpc.com/connect.(*Handler).ServeHTTP", "server.(*gate).wrap", "server.(*realtimeService).Subscribe"} {
		if got := goroutinesWith(frame); got != 0 {
			t.Errorf("%d goroutines in %s for %d idle streams", got, frame, n)
		}
	}
}

// TestStalledHTTP2StreamIsCut: an h2c stream whose client stops reading
// stalls the server's writes once its flow-control window is spent. It is
// cut, and its handler returns once the blocked write gives up: at the
// write timeout, or when the client resets the stream (with a timeout far
// beyond the test's patience). A stream on the same connection receives
// every event throughout.
func TestStalledHTTP2StreamIsCut(t *testing.T) {
	for _, reset := range []bool{false, true} {
		t.Run(fmt.Sprintf("reset=%v", reset), func(t *testing.T) { testStalledHTTP2Stream(t, reset) })
	}
}

func testStalledHTTP2Stream(t *testing.T, reset bool) {
	srv := newTestServer(t, func(c *server.Config) {
		c.QueueSize = 16
		c.StreamWriteTimeout = 2 * time.Second
		c.Heartbeat = time.Second // the write allowance is at least a heartbeat
		if reset {
			c.StreamWriteTimeout = 10 * time.Minute
		}
	})
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	var dials atomic.Int32
	tr := &http.Transport{
		Protocols: p,
		HTTP2:     &http.HTTP2Config{MaxReceiveBufferPerStream: 64 << 10},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}
	t.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr}
	newClient := func(user string) realtimev1connect.RealtimeServiceClient {
		return realtimev1connect.NewRealtimeServiceClient(hc, srv.URL, client.BearerToken(srv.Token(t, user, "home", time.Minute)))
	}
	fast := subscribe(t, newClient("fast"), "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	slow, err := newClient("slow").Subscribe(ctx, connect.NewRequest(&realtimev1.SubscribeRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	if !slow.Receive() {
		t.Fatal(slow.Err())
	}
	if n := dials.Load(); n != 1 {
		t.Fatalf("%d connections for the two streams, want one", n)
	}
	// Heartbeats come as fast as runners retire: some runner is about.
	poll.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		if n := server.DirectStreams(srv.Server.Server); n != 2 {
			return fmt.Errorf("%d direct streams of 2", n)
		}
		return nil
	})

	publishUntilCut(t, srv, fast)
	if reset {
		cancel()
	}
	// Its handler returns once the blocked write gives up.
	poll.Eventually(t, 20*time.Second, 10*time.Millisecond, func() error {
		if n := srv.OpenStreams(); n != 1 {
			return fmt.Errorf("%d open streams", n)
		}
		if n := server.DirectStreams(srv.Server.Server); n != 1 {
			return fmt.Errorf("%d direct streams", n)
		}
		if n := goroutinesWith(parkedHandlerFrame); n != 1 {
			return fmt.Errorf("%d handlers parked", n)
		}
		return nil
	})
	if _, err := srv.Emitter.ToHousehold(context.Background(), "home", notification("after")); err != nil {
		t.Fatal(err)
	}
	if got := fast.next(t).GetNotification().GetMessage(); got != "after" {
		t.Fatalf("fast subscriber got %.20q after the cut", got)
	}
	for slow.Receive() {
	}
	if slow.Err() == nil {
		t.Fatal("the stalled stream ended without an error")
	}
	if n := dials.Load(); n != 1 {
		t.Fatalf("%d connections: the cut took the shared one down", n)
	}
}

// TestGRPCOverHTTP1StaysOnConnect: connect-go serves a gRPC server stream
// over HTTP/1.1 too. Its trailers would be chunked ones, which a direct
// stream does not write: it stays in Connect's handler and ends as Connect
// ends it.
func TestGRPCOverHTTP1StaysOnConnect(t *testing.T) {
	srv := newTestServer(t, func(c *server.Config) { c.TokenGrace = time.Millisecond })
	kind := clientKind{name: "grpc-http1", protocol: []connect.ClientOption{connect.WithGRPC()}}
	s := subscribe(t, srv.realtimeClient(t, kind, srv.Token(t, "alice", "home", 3*time.Second)), "")
	if _, err := srv.Emitter.ToUser(context.Background(), "alice", notification("one")); err != nil {
		t.Fatal(err)
	}
	if got := s.next(t).GetNotification().GetMessage(); got != "one" {
		t.Fatalf("got %q", got)
	}
	if n := server.DirectStreams(srv.Server.Server); n != 0 {
		t.Fatalf("%d direct streams, want none", n)
	}
	wantCode(t, s.end(t, 20*time.Second), connect.CodeUnauthenticated)
}
