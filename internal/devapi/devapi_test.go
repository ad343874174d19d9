package devapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"connectrpc.com/connect"

	"github.com/honeydo/realtime/client"
	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	"github.com/honeydo/realtime/gen/honeydo/realtime/v1/realtimev1connect"
	"github.com/honeydo/realtime/internal/testkit"
)

func TestDevEndpoints(t *testing.T) {
	srv := testkit.StartServer(t)
	res, err := http.Get(srv.URL + "/dev/token?user=alice&household=home&ttl=30s")
	if err != nil {
		t.Fatal(err)
	}
	var tok struct{ Token, ExpireTime string }
	if err := json.NewDecoder(res.Body).Decode(&tok); err != nil || tok.Token == "" {
		t.Fatalf("token response: %v %v", tok, err)
	}
	res.Body.Close()

	// The minted token opens a stream, which /dev/streams then counts.
	c := realtimev1connect.NewRealtimeServiceClient(testkit.HTTPClient(t, false), srv.URL, client.BearerToken(tok.Token))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := c.Subscribe(ctx, connect.NewRequest(&realtimev1.SubscribeRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !s.Receive() || s.Msg().GetWelcome().GetUserId() != "alice" {
		t.Fatalf("no welcome for alice: %v %v", s.Msg(), s.Err())
	}
	var streams struct {
		Open   int
		ByUser map[string]int
	}
	res, err = http.Get(srv.URL + "/dev/streams")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(res.Body).Decode(&streams)
	res.Body.Close()
	if streams.Open != 1 || streams.ByUser["alice"] != 1 {
		t.Fatalf("dev/streams = %+v", streams)
	}
	for _, bad := range []string{"user=", "user=a%20b", "user=a&ttl=forever", "user=a&ttl=48h"} {
		res, err := http.Get(srv.URL + "/dev/token?" + bad)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d", bad, res.StatusCode)
		}
	}
}
