package auth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	"github.com/honeydo/realtime/gen/honeydo/realtime/v1/realtimev1connect"
)

// principalService answers with the principal the interceptor stored, so the
// tests see exactly what handlers see.
type principalService struct {
	realtimev1connect.UnimplementedRealtimeServiceHandler
}

func (principalService) Ping(context.Context, *connect.Request[realtimev1.PingRequest]) (*connect.Response[realtimev1.PingResponse], error) {
	return connect.NewResponse(&realtimev1.PingResponse{Time: timestamppb.Now()}), nil
}

func (principalService) WhoAmI(ctx context.Context, _ *connect.Request[realtimev1.WhoAmIRequest]) (*connect.Response[realtimev1.WhoAmIResponse], error) {
	p, ok := FromContext(ctx)
	if !ok {
		return nil, connect.NewError(connect.CodeInternal, errors.New("no principal in the handler's context"))
	}
	return connect.NewResponse(&realtimev1.WhoAmIResponse{
		UserId:      p.UserID,
		SessionId:   p.SessionID,
		HouseholdId: p.HouseholdID,
		Rooms:       p.ExtraRooms,
		ExpireTime:  timestamppb.New(p.Expiry),
	}), nil
}

func (principalService) Subscribe(ctx context.Context, _ *connect.Request[realtimev1.SubscribeRequest], stream *connect.ServerStream[realtimev1.SubscribeResponse]) error {
	p, ok := FromContext(ctx)
	if !ok {
		return connect.NewError(connect.CodeInternal, errors.New("no principal in the handler's context"))
	}
	return stream.Send(&realtimev1.SubscribeResponse{Frame: &realtimev1.SubscribeResponse_Welcome{Welcome: &realtimev1.Welcome{
		UserId:      p.UserID,
		SessionId:   p.SessionID,
		HouseholdId: p.HouseholdID,
		Rooms:       p.ExtraRooms,
	}}})
}

func (principalService) Publish(ctx context.Context, _ *connect.Request[realtimev1.PublishRequest]) (*connect.Response[realtimev1.PublishResponse], error) {
	p, err := RequireService(ctx)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&realtimev1.PublishResponse{EventId: "published-by-" + p.UserID}), nil
}

// failureLog records OnFailure calls.
type failureLog struct {
	mu      sync.Mutex
	reasons []string
}

func (f *failureLog) record(reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reasons = append(f.reasons, reason)
}

func (f *failureLog) take() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.reasons
	f.reasons = nil
	return r
}

type testServer struct {
	*httptest.Server
	failures *failureLog
}

// newTestServer serves the RealtimeService behind the auth interceptor over
// TLS with HTTP/2, so that Connect, gRPC and gRPC-Web all work.
func newTestServer(t *testing.T, cfg Config) *testServer {
	t.Helper()
	failures := &failureLog{}
	cfg.OnFailure = failures.record
	v, err := NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(realtimev1connect.NewRealtimeServiceHandler(principalService{}, connect.WithInterceptors(NewInterceptor(v))))
	srv := httptest.NewUnstartedServer(mux)
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return &testServer{Server: srv, failures: failures}
}

var protocols = []struct {
	name string
	opts []connect.ClientOption
}{
	{"connect", nil},
	{"grpc", []connect.ClientOption{connect.WithGRPC()}},
	{"grpcweb", []connect.ClientOption{connect.WithGRPCWeb()}},
}

func TestInterceptor(t *testing.T) {
	t.Parallel()
	dev := sharedDevKey(t)
	serviceKey := NewServiceKey()
	srv := newTestServer(t, Config{Dev: dev, ServiceKeys: map[string]string{"shopping": serviceKey}})

	alice, aliceExp, err := dev.Mint(MintOptions{UserID: "alice", HouseholdID: "h1", SessionID: "sess_alice", ExtraRooms: []string{"room:bench"}})
	if err != nil {
		t.Fatal(err)
	}
	expired, _, err := dev.Mint(MintOptions{UserID: "alice", HouseholdID: "h1", Now: time.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}

	for _, proto := range protocols {
		t.Run(proto.name, func(t *testing.T) {
			// The auth interceptor on the client too: it must not act there
			// (no double counting in OnFailure below).
			opts := append([]connect.ClientOption{connect.WithInterceptors(NewInterceptor(mustDevVerifier(t, dev)))}, proto.opts...)
			client := realtimev1connect.NewRealtimeServiceClient(srv.Client(), srv.URL, opts...)

			t.Run("whoami", func(t *testing.T) {
				res, err := client.WhoAmI(context.Background(), withAuth(connect.NewRequest(&realtimev1.WhoAmIRequest{}), "Bearer "+alice))
				if err != nil {
					t.Fatal(err)
				}
				m := res.Msg
				if m.UserId != "alice" || m.SessionId != "sess_alice" || m.HouseholdId != "h1" || strings.Join(m.Rooms, ",") != "room:bench" || !m.ExpireTime.AsTime().Equal(aliceExp) {
					t.Errorf("WhoAmI = %v", m)
				}
			})
			t.Run("subscribe", func(t *testing.T) {
				stream, err := client.Subscribe(context.Background(), withAuth(connect.NewRequest(&realtimev1.SubscribeRequest{}), "bearer "+alice))
				if err != nil {
					t.Fatal(err)
				}
				defer stream.Close()
				if !stream.Receive() {
					t.Fatalf("no welcome: %v", stream.Err())
				}
				w := stream.Msg().GetWelcome()
				if w.GetUserId() != "alice" || w.GetHouseholdId() != "h1" || w.GetSessionId() != "sess_alice" {
					t.Errorf("welcome = %v", w)
				}
			})
			t.Run("publish with a service key", func(t *testing.T) {
				res, err := client.Publish(context.Background(), withAuth(connect.NewRequest(&realtimev1.PublishRequest{}), "Bearer "+serviceKey))
				if err != nil {
					t.Fatal(err)
				}
				if res.Msg.EventId != "published-by-shopping" {
					t.Errorf("Publish = %v", res.Msg)
				}
			})
			t.Run("publish with the dev service key", func(t *testing.T) {
				res, err := client.Publish(context.Background(), withAuth(connect.NewRequest(&realtimev1.PublishRequest{}), "Bearer "+dev.ServiceKey()))
				if err != nil {
					t.Fatal(err)
				}
				if res.Msg.EventId != "published-by-dev" {
					t.Errorf("Publish = %v", res.Msg)
				}
			})

			failures := []struct {
				name   string
				header string
				code   connect.Code
				msg    string // substring of the message
				reason string // what OnFailure hears; "" for none
			}{
				{"no header", "", connect.CodeUnauthenticated, "missing bearer token", "missing"},
				{"basic auth", "Basic YWxpY2U6cHc=", connect.CodeUnauthenticated, "missing bearer token", "missing"},
				{"scheme only", "Bearer", connect.CodeUnauthenticated, "missing bearer token", "missing"},
				{"scheme and spaces", "Bearer    ", connect.CodeUnauthenticated, "missing bearer token", "missing"},
				{"token without scheme", alice, connect.CodeUnauthenticated, "missing bearer token", "missing"},
				{"garbage", "Bearer not-a-token", connect.CodeUnauthenticated, "malformed token", "malformed"},
				{"expired", "Bearer " + expired, connect.CodeUnauthenticated, "token expired", "expired"},
				{"unknown service key", "Bearer " + NewServiceKey(), connect.CodeUnauthenticated, "unknown service key", "unknown_service_key"},
			}
			for _, f := range failures {
				t.Run(f.name, func(t *testing.T) {
					srv.failures.take()
					_, err := client.Ping(context.Background(), withAuth(connect.NewRequest(&realtimev1.PingRequest{}), f.header))
					assertConnectError(t, "unary", err, f.code, f.msg)

					stream, err := client.Subscribe(context.Background(), withAuth(connect.NewRequest(&realtimev1.SubscribeRequest{}), f.header))
					if err == nil {
						for stream.Receive() {
							t.Error("stream delivered a message to an unauthenticated caller")
						}
						err = stream.Err()
						stream.Close()
					}
					assertConnectError(t, "stream", err, f.code, f.msg)

					if got := strings.Join(srv.failures.take(), ","); got != f.reason+","+f.reason {
						t.Errorf("OnFailure heard %q, want %q twice", got, f.reason)
					}
				})
			}
			t.Run("publish with a session token", func(t *testing.T) {
				_, err := client.Publish(context.Background(), withAuth(connect.NewRequest(&realtimev1.PublishRequest{}), "Bearer "+alice))
				assertConnectError(t, "publish", err, connect.CodePermissionDenied, "publishing needs a service credential; user session tokens may not publish")
			})
		})
	}
}

func mustDevVerifier(t *testing.T, dev *DevKey) *Verifier {
	t.Helper()
	v, err := NewVerifier(Config{Dev: dev})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func withAuth[T any](req *connect.Request[T], header string) *connect.Request[T] {
	if header != "" {
		req.Header().Set("Authorization", header)
	}
	return req
}

func assertConnectError(t *testing.T, what string, err error, code connect.Code, msg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: call succeeded, want %v", what, code)
	}
	if got := connect.CodeOf(err); got != code {
		t.Errorf("%s: code %v (%v), want %v", what, got, err, code)
	}
	if !strings.Contains(err.Error(), msg) {
		t.Errorf("%s: message %q, want it to contain %q", what, err, msg)
	}
}

func TestBearerToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		header string
		token  string
		ok     bool
	}{
		{"Bearer abc", "abc", true},
		{"bearer abc", "abc", true},
		{"BEARER abc", "abc", true},
		{"  Bearer    abc  ", "abc", true},
		{"Bearer abc def", "abc def", true}, // Verify rejects it as malformed
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"Basic abc", "", false},
		{"Bearerabc", "", false},
		{"abc", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		h := http.Header{}
		if tt.header != "" {
			h.Set("Authorization", tt.header)
		}
		token, ok := BearerToken(h)
		if token != tt.token || ok != tt.ok {
			t.Errorf("BearerToken(%q) = %q, %v; want %q, %v", tt.header, token, ok, tt.token, tt.ok)
		}
	}
}

// TestInterceptorTrustsPrincipalInContext: a principal that an HTTP
// middleware verified and put in the request's context is not verified
// again (no second signature check, no second failure count).
func TestInterceptorTrustsPrincipalInContext(t *testing.T) {
	t.Parallel()
	failures := &failureLog{}
	v, err := NewVerifier(Config{Dev: sharedDevKey(t), OnFailure: failures.record})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	path, h := realtimev1connect.NewRealtimeServiceHandler(principalService{}, connect.WithInterceptors(NewInterceptor(v)))
	mux.Handle(path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), &Principal{UserID: "from-middleware", HouseholdID: "h1"})))
	}))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	client := realtimev1connect.NewRealtimeServiceClient(srv.Client(), srv.URL)
	// No Authorization header at all: the interceptor alone would refuse.
	res, err := client.WhoAmI(context.Background(), connect.NewRequest(&realtimev1.WhoAmIRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if res.Msg.UserId != "from-middleware" {
		t.Errorf("WhoAmI = %v", res.Msg)
	}
	if got := failures.take(); len(got) != 0 {
		t.Errorf("OnFailure heard %v", got)
	}
}
