package server

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/honeydo/realtime/internal/auth"
)

// TestGateTellsHandlersWhetherTheConnectionIsShared: a stream coalesces
// longer on a connection that other streams share (maxCoalesceYieldsShared),
// which it learns from the gate: HTTP/2 (h2c here) is shared, HTTP/1.1 is
// not.
func TestGateTellsHandlersWhetherTheConnectionIsShared(t *testing.T) {
	key, err := auth.LoadOrCreateDevKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(auth.Config{Dev: key, DefaultHousehold: "home"})
	if err != nil {
		t.Fatal(err)
	}
	token, _, err := key.Mint(auth.MintOptions{UserID: "alice", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{verifier: v, errors: connect.NewErrorWriter()}
	srv := httptest.NewUnstartedServer(g.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "multiplexed=%v controller=%v", multiplexed(r.Context()), responseController(r.Context()) != nil)
	})))
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	defer srv.Close()

	for _, tc := range []struct {
		name string
		h2c  bool
		want string
	}{
		{"HTTP/1.1", false, "multiplexed=false controller=true"},
		{"h2c", true, "multiplexed=true controller=true"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := new(http.Protocols)
			p.SetHTTP1(!tc.h2c)
			p.SetUnencryptedHTTP2(tc.h2c)
			client := &http.Client{Transport: &http.Transport{Protocols: p}}
			defer client.CloseIdleConnections()
			req, _ := http.NewRequest(http.MethodPost, srv.URL, nil)
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK || string(body) != tc.want {
				t.Fatalf("%s %d %q, want 200 %q", resp.Proto, resp.StatusCode, body, tc.want)
			}
		})
	}
}
