package client_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/honeydo/realtime/client"
	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	"github.com/honeydo/realtime/gen/honeydo/realtime/v1/realtimev1connect"
	"github.com/honeydo/realtime/internal/testkit"
)

// TestNewRealtimeClient calls the unary RPCs over every protocol with the
// package's default HTTP client (h2c for gRPC).
func TestNewRealtimeClient(t *testing.T) {
	srv := newTestServer(t)
	user := srv.tokens("alice", time.Minute).Token
	service := func(context.Context) (string, error) { return srv.Key.ServiceKey(), nil }
	ctx := context.Background()
	for _, pc := range protocolCases {
		t.Run(pc.name, func(t *testing.T) {
			c, err := client.NewRealtimeClient(client.Options{BaseURL: srv.URL + "/", Protocol: pc.protocol, Token: user})
			if err != nil {
				t.Fatal(err)
			}
			who, err := c.WhoAmI(ctx, connect.NewRequest(&realtimev1.WhoAmIRequest{}))
			if err != nil {
				t.Fatal(err)
			}
			if who.Msg.GetUserId() != "alice" || who.Msg.GetHouseholdId() != "home" || who.Msg.GetService() {
				t.Fatalf("WhoAmI: %v", who.Msg)
			}
			if _, err := c.Ping(ctx, connect.NewRequest(&realtimev1.PingRequest{})); err != nil {
				t.Fatal(err)
			}
			req := &realtimev1.PublishRequest{
				Target: &realtimev1.Target{To: &realtimev1.Target_HouseholdId{HouseholdId: "home"}},
				Event:  notification("hi"),
			}
			_, err = c.Publish(ctx, connect.NewRequest(req))
			wantCode(t, err, connect.CodePermissionDenied)

			svc, err := client.NewRealtimeClient(client.Options{BaseURL: srv.URL, Protocol: pc.protocol, Token: service})
			if err != nil {
				t.Fatal(err)
			}
			res, err := svc.Publish(ctx, connect.NewRequest(req))
			if err != nil {
				t.Fatal(err)
			}
			if res.Msg.GetEventId() == "" || res.Msg.GetCursor() == "" {
				t.Fatalf("Publish: %v", res.Msg)
			}
		})
	}
}

func TestBearerToken(t *testing.T) {
	srv := newTestServer(t)
	tok, err := srv.tokens("bob", time.Minute).Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c := realtimev1connect.NewRealtimeServiceClient(testkit.HTTPClient(t, false), srv.URL, client.BearerToken(tok))
	who, err := c.WhoAmI(context.Background(), connect.NewRequest(&realtimev1.WhoAmIRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if who.Msg.GetUserId() != "bob" {
		t.Fatalf("WhoAmI: %v", who.Msg)
	}
	// Streams carry the header too.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := c.Subscribe(ctx, connect.NewRequest(&realtimev1.SubscribeRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	if !stream.Receive() || stream.Msg().GetWelcome().GetUserId() != "bob" {
		t.Fatalf("no welcome for bob: %v", stream.Err())
	}
}

func TestTokenInterceptorError(t *testing.T) {
	srv := newTestServer(t)
	fail := errors.New("signed out")
	c := realtimev1connect.NewRealtimeServiceClient(testkit.HTTPClient(t, false), srv.URL,
		connect.WithInterceptors(client.TokenInterceptor(func(context.Context) (string, error) { return "", fail })))
	_, err := c.Ping(context.Background(), connect.NewRequest(&realtimev1.PingRequest{}))
	wantCode(t, err, connect.CodeUnauthenticated)
	if !errors.Is(err, fail) {
		t.Fatalf("Ping error %v does not wrap the token error", err)
	}
	stream, err := c.Subscribe(context.Background(), connect.NewRequest(&realtimev1.SubscribeRequest{}))
	if err == nil {
		defer stream.Close()
		if stream.Receive() {
			t.Fatal("stream opened without a token")
		}
		err = stream.Err()
	}
	if !errors.Is(err, fail) {
		t.Fatalf("Subscribe error %v does not wrap the token error", err)
	}
}

func TestBackoffDelay(t *testing.T) {
	for _, tc := range []struct {
		b       client.Backoff
		attempt int
		ceiling time.Duration
	}{
		{client.Backoff{}, 1, time.Second},
		{client.Backoff{}, 2, 2 * time.Second},
		{client.Backoff{}, 3, 4 * time.Second},
		{client.Backoff{}, 4, 5 * time.Second},
		{client.Backoff{}, 1000, 5 * time.Second},
		{client.Backoff{Initial: 10 * time.Millisecond, Max: 15 * time.Millisecond}, 3, 15 * time.Millisecond},
		{client.Backoff{Initial: time.Second, Max: time.Millisecond}, 5, time.Second},
	} {
		var top time.Duration
		for range 2000 {
			d := tc.b.Delay(tc.attempt)
			if d < 0 || d > tc.ceiling {
				t.Fatalf("%+v attempt %d: delay %v outside [0, %v]", tc.b, tc.attempt, d, tc.ceiling)
			}
			top = max(top, d)
		}
		// Full jitter uses the whole range.
		if top < tc.ceiling/2 {
			t.Fatalf("%+v attempt %d: largest of 2000 delays is %v, ceiling %v", tc.b, tc.attempt, top, tc.ceiling)
		}
	}
}

func TestParseProtocol(t *testing.T) {
	for in, want := range map[string]client.Protocol{
		"connect": client.ProtocolConnect, "": client.ProtocolConnect, "GRPC": client.ProtocolGRPC,
		"grpcweb": client.ProtocolGRPCWeb, "grpc-web": client.ProtocolGRPCWeb,
	} {
		got, err := client.ParseProtocol(in)
		if err != nil || got != want {
			t.Errorf("ParseProtocol(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := client.ParseProtocol("websocket"); err == nil {
		t.Error("ParseProtocol accepted websocket")
	}
	for _, p := range []client.Protocol{client.ProtocolConnect, client.ProtocolGRPC, client.ProtocolGRPCWeb} {
		if got, err := client.ParseProtocol(p.String()); err != nil || got != p {
			t.Errorf("ParseProtocol(%v.String()) = %v, %v", p, got, err)
		}
	}
}
