package server_test

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	"github.com/honeydo/realtime/internal/server"
	"github.com/honeydo/realtime/internal/testkit/syncbuf"
)

// TestServiceIsNotAUser: the dev service (a service key named "dev") and a
// user whose id is "dev" share nothing: the service may not subscribe (over
// every protocol) and so holds none of the user's streams or rooms, WhoAmI
// tells them apart, they draw on separate rate-limit buckets, and logs name
// the service as service=dev, never user=dev.
func TestServiceIsNotAUser(t *testing.T) {
	t.Parallel()
	var logs syncbuf.Buffer
	srv := newTestServer(t, func(c *server.Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		c.MaxStreamsPerUser = 1
	})
	service := srv.Key.ServiceKey()
	user := srv.Token(t, "dev", "home", time.Hour)

	t.Run("Subscribe", func(t *testing.T) {
		// Before the user's stream (a service stream would take the user's
		// one allowed stream) and while it is open (the answer is not the
		// user's quota).
		refuseService := func() {
			t.Helper()
			for _, kind := range clientKinds {
				_, err := trySubscribe(t, srv.realtimeClient(t, kind, service), "")
				wantCode(t, err, connect.CodePermissionDenied)
				if msg := err.Error(); !strings.Contains(msg, "service credentials may not") {
					t.Fatalf("%s: message %q does not say why", kind.name, msg)
				}
			}
		}
		refuseService()
		s, err := trySubscribe(t, srv.realtimeClient(t, clientKinds[0], user), "")
		if err != nil {
			t.Fatalf("user dev cannot subscribe after the service tried: %v", err)
		}
		if got, want := s.Welcome.GetRooms(), []string{"user:dev", "household:home", "broadcast"}; !slices.Equal(got, want) {
			t.Fatalf("user dev joined %v, want %v", got, want)
		}
		refuseService()
		// An event for user dev reaches the user's stream.
		svc := srv.realtimeClient(t, clientKinds[0], service)
		if _, err := svc.Publish(context.Background(), connect.NewRequest(&realtimev1.PublishRequest{
			Target: &realtimev1.Target{To: &realtimev1.Target_UserId{UserId: "dev"}},
			Event:  notification("for the user dev"),
		})); err != nil {
			t.Fatal(err)
		}
		if ev := s.next(t); ev.GetNotification().GetMessage() != "for the user dev" {
			t.Fatalf("user dev got %v", ev)
		}
	})

	t.Run("WhoAmI", func(t *testing.T) {
		for _, tc := range []struct {
			name, token string
			want        *realtimev1.WhoAmIResponse
		}{
			{"service", service, &realtimev1.WhoAmIResponse{UserId: "dev", Service: true}},
			{"user", user, &realtimev1.WhoAmIResponse{UserId: "dev", HouseholdId: "home", Rooms: []string{"user:dev", "household:home", "broadcast"}}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				res, err := srv.realtimeClient(t, clientKinds[0], tc.token).WhoAmI(context.Background(), connect.NewRequest(&realtimev1.WhoAmIRequest{}))
				if err != nil {
					t.Fatal(err)
				}
				got := res.Msg
				if got.GetUserId() != tc.want.GetUserId() || got.GetService() != tc.want.GetService() ||
					got.GetHouseholdId() != tc.want.GetHouseholdId() || !slices.Equal(got.GetRooms(), tc.want.GetRooms()) ||
					(got.GetExpireTime() == nil) != tc.want.GetService() {
					t.Fatalf("WhoAmI = %v, want %v", got, tc.want)
				}
			})
		}
	})

	t.Run("Logs", func(t *testing.T) {
		var refused, opened, published int
		for line := range strings.Lines(logs.String()) {
			switch {
			case strings.Contains(line, "stream refused"):
				refused++
				if !strings.Contains(line, " service=dev") || strings.Contains(line, "user=") {
					t.Errorf("refusal not logged as the service: %s", line)
				}
			case strings.Contains(line, "stream opened"):
				opened++
				if !strings.Contains(line, " user=dev ") || strings.Contains(line, "service=") {
					t.Errorf("the user's stream not logged as the user: %s", line)
				}
			case strings.Contains(line, "event published"):
				published++
				if !strings.Contains(line, " service=dev") || strings.Contains(line, "user=") {
					t.Errorf("publish not logged as the service: %s", line)
				}
			}
		}
		if refused != 2*len(clientKinds) || opened != 1 || published != 1 {
			t.Fatalf("%d refusals, %d opened, %d published logged:\n%s", refused, opened, published, logs.String())
		}
	})
}

// TestServiceAndUserRateLimitsApart: draining the bucket of the user "dev"
// leaves the dev service's untouched, and the other way round.
func TestServiceAndUserRateLimitsApart(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name         string
		drainService bool
	}{
		{"user drained", false},
		{"service drained", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// Refills take 1000 s per call: a drained bucket stays drained.
			srv := newTestServer(t, func(c *server.Config) { c.RateLimit = server.RateLimit{PerSecond: 0.001, Burst: 3} })
			service := srv.realtimeClient(t, clientKinds[0], srv.Key.ServiceKey())
			user := srv.realtimeClient(t, clientKinds[0], srv.Token(t, "dev", "home", time.Hour))
			drained, other := user, service
			if tc.drainService {
				drained, other = service, user
			}
			ping := func(c interface {
				Ping(context.Context, *connect.Request[realtimev1.PingRequest]) (*connect.Response[realtimev1.PingResponse], error)
			}) error {
				_, err := c.Ping(context.Background(), connect.NewRequest(&realtimev1.PingRequest{}))
				return err
			}
			for range 3 {
				if err := ping(drained); err != nil {
					t.Fatal(err)
				}
			}
			wantCode(t, ping(drained), connect.CodeResourceExhausted)
			if err := ping(other); err != nil {
				t.Fatalf("the other principal named dev was limited too: %v", err)
			}
		})
	}
}
