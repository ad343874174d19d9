package server

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"

	"connectrpc.com/connect"

	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	"github.com/honeydo/realtime/gen/honeydo/realtime/v1/realtimev1connect"
	"github.com/honeydo/realtime/internal/connwatch"
)

// endsWith is a RealtimeService whose Subscribe sends one heartbeat and
// ends with err: connect-go then writes its own end of stream for err.
type endsWith struct {
	realtimev1connect.UnimplementedRealtimeServiceHandler
	err error
}

func (e endsWith) Subscribe(_ context.Context, _ *connect.Request[realtimev1.SubscribeRequest], s *connect.ServerStream[realtimev1.SubscribeResponse]) error {
	if err := s.Send(&realtimev1.SubscribeResponse{Frame: &realtimev1.SubscribeResponse_Heartbeat{Heartbeat: &realtimev1.Heartbeat{}}}); err != nil {
		return err
	}
	return e.err
}

// envelope is one message of a Connect or gRPC-Web stream, decompressed.
type envelope struct {
	flags   byte
	payload []byte
}

// readEnvelopes reads the envelopes of a response body to its end.
func readEnvelopes(t *testing.T, body io.Reader) []envelope {
	t.Helper()
	var out []envelope
	for {
		var prefix [5]byte
		if _, err := io.ReadFull(body, prefix[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return out
			}
			t.Fatalf("read envelope: %v", err)
		}
		p := make([]byte, binary.BigEndian.Uint32(prefix[1:]))
		if _, err := io.ReadFull(body, p); err != nil {
			t.Fatalf("read envelope: %v", err)
		}
		if prefix[0]&envelopeCompressed != 0 {
			zr, err := gzip.NewReader(bytes.NewReader(p))
			if err != nil {
				t.Fatal(err)
			}
			if p, err = io.ReadAll(zr); err != nil {
				t.Fatal(err)
			}
		}
		out = append(out, envelope{prefix[0], p})
	}
}

// TestEndOfStreamMatchesConnect ends streams with errors of every shape
// and checks that a direct stream's end of stream is connect-go's, byte for
// byte after decompression, in both protocols, with and without gzip: a
// direct stream writes it itself, and clients parse what connect-go
// writes.
func TestEndOfStreamMatchesConnect(t *testing.T) {
	errs := endErrors()
	for _, web := range []bool{false, true} {
		for _, gz := range []bool{false, true} {
			for i, err := range errs {
				name := fmt.Sprintf("web=%v/gzip=%v/%d", web, gz, i)
				t.Run(name, func(t *testing.T) {
					want := connectEnd(t, web, gz, err)
					got := directEnd(t, web, gz, err)
					if got.flags != want.flags || !bytes.Equal(got.payload, want.payload) {
						t.Fatalf("direct end of stream\n flags %#x %q\nwant connect-go's\n flags %#x %q", got.flags, got.payload, want.flags, want.payload)
					}
				})
			}
		}
	}
}

// endErrors are errors of every shape a stream could end with.
func endErrors() []error {
	return []error{
		nil,
		connect.NewError(connect.CodeUnavailable, errors.New("server is shutting down: reconnect with your cursor")),
		connect.NewError(connect.CodeUnauthenticated, errors.New("token expired: reconnect with a fresh token and your cursor")),
		connect.NewError(connect.CodeResourceExhausted, errors.New(`slow <consumer> & "100%" ünïcode`+"\n\ttab")),
		connect.NewError(connect.CodeInternal, nil),
		connect.NewError(connect.CodePermissionDenied, errors.New("  padded \t message\n ")),
		fmt.Errorf("wrapped: %w", connect.NewError(connect.CodeCanceled, errors.New("inner"))),
		errors.New("not a connect error"),
	}
}

// TestGRPCTrailersMatchConnect: the trailers a direct gRPC stream sets
// for its end are connect-go's, for errors of every shape, as a client
// reads them over HTTP/2.
func TestGRPCTrailersMatchConnect(t *testing.T) {
	_, h := realtimev1connect.NewRealtimeServiceHandler(&endsWithEach{errs: endErrors()})
	srv := httptest.NewUnstartedServer(h)
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	defer srv.Close()
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: p}
	defer tr.CloseIdleConnections()
	var want http.Header // as the client's transport read them
	record := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		res, err := tr.RoundTrip(r)
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		want = res.Trailer.Clone()
		res.Body = io.NopCloser(bytes.NewReader(b))
		return res, err
	})
	c := realtimev1connect.NewRealtimeServiceClient(&http.Client{Transport: record}, srv.URL, connect.WithGRPC())
	for i, err := range endErrors() {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			rs, cerr := c.Subscribe(context.Background(), connect.NewRequest(&realtimev1.SubscribeRequest{ResumeCursor: fmt.Sprint(i)}))
			if cerr != nil {
				t.Fatal(cerr)
			}
			for rs.Receive() {
			}
			rs.Close()
			if want.Get("Grpc-Status") == "" {
				t.Fatalf("connect-go's trailers %v have no status", want)
			}
			set := make(http.Header)
			grpcTrailers(set, err)
			got := make(http.Header)
			for name, values := range set {
				got[strings.TrimPrefix(name, http.TrailerPrefix)] = values
			}
			for _, name := range []string{"Grpc-Status", "Grpc-Message"} {
				if g, w := got.Values(name), want.Values(name); !slices.Equal(g, w) {
					t.Errorf("%s: direct %q, connect-go %q", name, g, w)
				}
			}
		})
	}
}

// endsWithEach is endsWith whose error is the one errs holds at the index
// the request's resume cursor names.
type endsWithEach struct {
	realtimev1connect.UnimplementedRealtimeServiceHandler
	errs []error
}

func (e *endsWithEach) Subscribe(ctx context.Context, req *connect.Request[realtimev1.SubscribeRequest], s *connect.ServerStream[realtimev1.SubscribeResponse]) error {
	i, err := strconv.Atoi(req.Msg.GetResumeCursor())
	if err != nil {
		return err
	}
	return endsWith{err: e.errs[i]}.Subscribe(ctx, req, s)
}

// connectEnd is the last envelope connect-go writes for a stream that ends
// with err.
func connectEnd(t *testing.T, web, gz bool, err error) envelope {
	t.Helper()
	opts := []connect.HandlerOption{}
	if gz {
		opts = append(opts, connect.WithCompressMinBytes(1))
	}
	_, h := realtimev1connect.NewRealtimeServiceHandler(endsWith{err: err}, opts...)
	srv := httptest.NewServer(h)
	defer srv.Close()
	copts := []connect.ClientOption{}
	if web {
		copts = append(copts, connect.WithGRPCWeb())
	}
	var body []byte
	hc := &http.Client{Transport: recordBody(&body)}
	if !gz {
		copts = append(copts, connect.WithAcceptCompression("gzip", nil, nil)) // takes gzip away
	}
	c := realtimev1connect.NewRealtimeServiceClient(hc, srv.URL, copts...)
	rs, cerr := c.Subscribe(context.Background(), connect.NewRequest(&realtimev1.SubscribeRequest{}))
	if cerr != nil {
		t.Fatal(cerr)
	}
	for rs.Receive() {
	}
	rs.Close()
	envs := readEnvelopes(t, bytes.NewReader(body))
	if len(envs) != 2 {
		t.Fatalf("connect-go wrote %d envelopes, want heartbeat and end", len(envs))
	}
	return envs[1]
}

// recordBody is a transport that keeps a copy of each response body.
func recordBody(dst *[]byte) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		res, err := http.DefaultTransport.RoundTrip(r)
		if err != nil {
			return nil, err
		}
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		*dst = b
		res.Body = io.NopCloser(bytes.NewReader(b))
		return res, err
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// directEnd is what directWriter.end writes for err, read back as an HTTP
// chunked body.
func directEnd(t *testing.T, web, gz bool, err error) envelope {
	t.Helper()
	server, client := net.Pipe()
	d := &directWriter{conn: server, web: web, codec: protoCodec{}}
	if gz {
		d.gzipMin = 1
	}
	d.watch(connwatch.New(), func() {})
	read := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(client)
		read <- b
	}()
	// The client's side sees the end and then the close; the watch on the
	// server's side ends with the close.
	d.end(err)
	raw := <-read
	client.Close()
	res, rerr := http.ReadResponse(bufio.NewReader(io.MultiReader(strings.NewReader("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), bytes.NewReader(raw))), nil)
	if rerr != nil {
		t.Fatal(rerr)
	}
	body, rerr := io.ReadAll(res.Body)
	if rerr != nil {
		t.Fatalf("chunked body %q: %v", raw, rerr)
	}
	envs := readEnvelopes(t, bytes.NewReader(body))
	if len(envs) != 1 {
		t.Fatalf("direct end wrote %d envelopes, want 1", len(envs))
	}
	return envs[0]
}
