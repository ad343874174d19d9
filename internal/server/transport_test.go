package server_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/honeydo/realtime/client"
	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	"github.com/honeydo/realtime/gen/honeydo/realtime/v1/realtimev1connect"
	"github.com/honeydo/realtime/internal/auth"
	"github.com/honeydo/realtime/internal/broker"
	"github.com/honeydo/realtime/internal/devcert"
	"github.com/honeydo/realtime/internal/module"
	"github.com/honeydo/realtime/internal/server"
	"github.com/honeydo/realtime/internal/testkit/poll"
)

// TestTLSServesHTTP2 starts the server with a certificate, as browsers need
// it for HTTP/2, and checks that a TLS client negotiates h2 and streams.
func TestTLSServesHTTP2(t *testing.T) {
	dir := t.TempDir()
	cert, err := devcert.Write(dir, []string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := os.ReadFile(cert.Cert)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	key, _ := auth.LoadOrCreateDevKey(dir)
	verifier, _ := auth.NewVerifier(auth.Config{Dev: key, DefaultHousehold: "home"})
	b := broker.NewMemory(broker.MemoryConfig{})
	defer b.Close()
	srv, err := server.New(server.Config{Broker: b, Verifier: verifier})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln, cert.Cert, cert.Key) }()
	defer func() {
		srv.Shutdown(context.Background())
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	}()
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	tok, _, _ := key.Mint(auth.MintOptions{UserID: "alice", TTL: time.Minute})
	c := realtimev1connect.NewRealtimeServiceClient(hc, "https://"+ln.Addr().String(), client.BearerToken(tok))
	s := subscribe(t, c, "")
	if _, err := module.NewEmitter(b).ToUser(context.Background(), "alice", notification("over tls")); err != nil {
		t.Fatal(err)
	}
	if got := s.next(t).GetNotification().GetMessage(); got != "over tls" {
		t.Fatalf("got %q", got)
	}
	// A browser's stream over HTTP/2 leaves Connect's handler too.
	poll.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		if n := server.DirectStreams(srv); n != 1 {
			return fmt.Errorf("%d direct streams, want 1", n)
		}
		return nil
	})
	res, err := hc.Get("https://" + ln.Addr().String() + "/grpc.health.v1.Health/Check")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.ProtoMajor != 2 {
		t.Fatalf("negotiated %s, want HTTP/2", res.Proto)
	}
	_, err = c.Ping(context.Background(), connect.NewRequest(&realtimev1.PingRequest{}))
	if err != nil {
		t.Fatal(err)
	}

	// A connection that never sends its ClientHello holds up no one: the
	// handshakes run beside the accept loop.
	stalled, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	// A client without HTTP/2 gets HTTP/1.1 by ALPN.
	p := new(http.Protocols)
	p.SetHTTP1(true)
	tr1 := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, Protocols: p}
	defer tr1.CloseIdleConnections()
	c1 := realtimev1connect.NewRealtimeServiceClient(&http.Client{Transport: tr1}, "https://"+ln.Addr().String(), client.BearerToken(tok))
	s1 := subscribe(t, c1, "")
	if _, err := module.NewEmitter(b).ToUser(context.Background(), "alice", notification("over http/1.1")); err != nil {
		t.Fatal(err)
	}
	if got := s1.next(t).GetNotification().GetMessage(); got != "over http/1.1" {
		t.Fatalf("got %q", got)
	}
	res, err = (&http.Client{Transport: tr1}).Get("https://" + ln.Addr().String() + "/grpc.health.v1.Health/Check")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.ProtoMajor != 1 {
		t.Fatalf("negotiated %s, want HTTP/1.1", res.Proto)
	}
}

func TestCORS(t *testing.T) {
	srv := newTestServer(t, func(c *server.Config) { c.CORSOrigins = []string{"https://app.example"} })
	preflight := func(origin string) *http.Response {
		req, _ := http.NewRequest(http.MethodOptions, srv.URL+"/honeydo.realtime.v1.RealtimeService/Subscribe", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization,connect-protocol-version,content-type,realtime-origin") // sorted, as browsers send it
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	res := preflight("https://app.example")
	if got := res.Header.Get("Access-Control-Allow-Origin"); got != "https://app.example" {
		t.Fatalf("allowed origin: Access-Control-Allow-Origin = %q", got)
	}
	if got := res.Header.Get("Access-Control-Allow-Headers"); got == "" {
		t.Fatal("no Access-Control-Allow-Headers")
	}
	res = preflight("https://evil.example")
	if got := res.Header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Fatalf("other origin allowed: %q", got)
	}
	// An actual call exposes the Connect/gRPC-Web headers to the page.
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/honeydo.realtime.v1.RealtimeService/Ping", nil)
	req.Header.Set("Origin", "https://app.example")
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.Header.Get("Access-Control-Expose-Headers") == "" {
		t.Fatal("no Access-Control-Expose-Headers")
	}
}
