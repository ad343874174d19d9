package realtime_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	realtime "github.com/honeydo/realtime"
	"github.com/honeydo/realtime/client"
	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	systemv1 "github.com/honeydo/realtime/gen/honeydo/system/v1"
	"github.com/honeydo/realtime/internal/testkit"
)

// remindersModule is a module written, as an application would, against
// the public API only: one procedure that reminds a user's household of
// something, except the calling client.
type remindersModule struct{ calls chan realtime.Principal }

const remind = "/acme.reminders.v1.RemindersService/Remind"

func (remindersModule) Name() string { return "reminders" }

func (m remindersModule) Mount(env realtime.ModuleEnv) ([]realtime.Service, error) {
	h := func(ctx context.Context, req *connect.Request[wrapperspb.StringValue]) (*connect.Response[wrapperspb.StringValue], error) {
		caller, err := realtime.RequireUser(ctx)
		if err != nil {
			return nil, err
		}
		m.calls <- caller
		sent, err := env.Emitter.ToOthers(ctx, caller.HouseholdID, &realtimev1.Event{
			Payload: &realtimev1.Event_Notification{Notification: &systemv1.Notification{Message: req.Msg.GetValue()}},
		})
		if err != nil {
			return nil, realtime.ConnectError(err)
		}
		return connect.NewResponse(wrapperspb.String(sent.ID)), nil
	}
	return []realtime.Service{
		realtime.NewService("/acme.reminders.v1.RemindersService/", connect.NewUnaryHandler(remind, h, env.HandlerOptions...)),
	}, nil
}

// env is an embedded service on an httptest server.
type env struct {
	rt  *realtime.Realtime
	srv *httptest.Server
	key *realtime.DevKey
}

func newEnv(t *testing.T, opts realtime.Options) *env {
	t.Helper()
	key, err := realtime.LoadDevKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	opts.Dev = key
	rt, err := realtime.New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	rt.Mount(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		if err := rt.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		srv.Close()
	})
	return &env{rt: rt, srv: srv, key: key}
}

func (e *env) token(t *testing.T, user, household string) string {
	t.Helper()
	tok, err := e.key.Token(user, household, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// next waits for the stream's next event.
func next(t *testing.T, s *stream) *realtimev1.Event {
	t.Helper()
	select {
	case ev := <-s.c:
		return ev
	case <-time.After(20 * time.Second):
		t.Fatal("no event within 20s")
	}
	return nil
}

// TestModule: a module registered in Options.Modules is served on the
// application's mux behind the same verification, its handler gets the
// verified caller, and its event reaches a household member's Subscribe
// stream tagged with the actor and the calling client's origin.
func TestModule(t *testing.T) {
	t.Parallel()
	m := remindersModule{calls: make(chan realtime.Principal, 1)}
	e := newEnv(t, realtime.Options{Modules: []realtime.Module{m}})
	if got := e.rt.Services(); !slices.Equal(got, []string{"honeydo.realtime.v1.RealtimeService", "acme.reminders.v1.RemindersService"}) {
		t.Errorf("Services() = %q", got)
	}
	bob := subscribe(context.Background(), e.srv, e.token(t, "bob", "home"))
	t.Cleanup(bob.close)

	c := connect.NewClient[wrapperspb.StringValue, wrapperspb.StringValue](e.srv.Client(), e.srv.URL+remind,
		client.BearerToken(e.token(t, "alice", "home")), client.WithOrigin("alice-phone"))
	res, err := c.CallUnary(context.Background(), connect.NewRequest(wrapperspb.String("bins out tonight")))
	if err != nil {
		t.Fatalf("Remind: %v", err)
	}
	if caller := <-m.calls; caller.UserID != "alice" || caller.HouseholdID != "home" || caller.Service {
		t.Errorf("the handler saw caller %+v", caller)
	}
	ev := next(t, bob)
	if ev.GetNotification().GetMessage() != "bins out tonight" || ev.GetSenderUserId() != "alice" ||
		ev.GetOrigin() != "alice-phone" || ev.GetId() != res.Msg.GetValue() {
		t.Errorf("bob got %v, want alice's reminder %s from alice-phone", ev, res.Msg.GetValue())
	}

	// The same mux over h2c, as gRPC clients speak it.
	h2c := httptest.NewUnstartedServer(e.srv.Config.Handler)
	h2c.Config.Protocols = new(http.Protocols)
	h2c.Config.Protocols.SetUnencryptedHTTP2(true)
	h2c.Start()
	t.Cleanup(h2c.Close)
	grpc := connect.NewClient[wrapperspb.StringValue, wrapperspb.StringValue](testkit.HTTPClient(t, true), h2c.URL+remind,
		client.BearerToken(e.token(t, "alice", "home")), connect.WithGRPC())
	if _, err := grpc.CallUnary(context.Background(), connect.NewRequest(wrapperspb.String("over gRPC"))); err != nil {
		t.Fatalf("Remind over gRPC: %v", err)
	}
	<-m.calls
	if ev := next(t, bob); ev.GetNotification().GetMessage() != "over gRPC" {
		t.Errorf("bob got %v, want the reminder sent over gRPC", ev)
	}

	anonymous := connect.NewClient[wrapperspb.StringValue, wrapperspb.StringValue](e.srv.Client(), e.srv.URL+remind)
	if _, err := anonymous.CallUnary(context.Background(), connect.NewRequest(wrapperspb.String("x"))); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Errorf("Remind without a token: %v, want Unauthenticated", err)
	}
	service := connect.NewClient[wrapperspb.StringValue, wrapperspb.StringValue](e.srv.Client(), e.srv.URL+remind, client.BearerToken(e.key.ServiceKey()))
	if _, err := service.CallUnary(context.Background(), connect.NewRequest(wrapperspb.String("x"))); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Errorf("Remind with a service key: %v, want PermissionDenied", err)
	}
}

// TestInterceptor: the application's own handler, built with
// Realtime.Interceptor, sees the same caller RealtimeService does and
// refuses a bad token before the handler runs.
func TestInterceptor(t *testing.T) {
	t.Parallel()
	e := newEnv(t, realtime.Options{})
	var (
		mu   sync.Mutex
		seen []realtime.Principal
	)
	h := func(ctx context.Context, _ *connect.Request[emptypb.Empty]) (*connect.Response[emptypb.Empty], error) {
		p, ok := realtime.Caller(ctx)
		if !ok {
			t.Error("no caller in the handler")
		}
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, p)
		return connect.NewResponse(&emptypb.Empty{}), nil
	}
	const proc = "/acme.v1.Own/Call"
	mux := http.NewServeMux()
	mux.Handle(proc, connect.NewUnaryHandler(proc, h, connect.WithInterceptors(e.rt.Interceptor())))
	own := httptest.NewServer(mux)
	t.Cleanup(own.Close)
	call := func(token string) error {
		var opts []connect.ClientOption
		if token != "" {
			opts = append(opts, client.BearerToken(token))
		}
		_, err := connect.NewClient[emptypb.Empty, emptypb.Empty](own.Client(), own.URL+proc, opts...).CallUnary(context.Background(), connect.NewRequest(&emptypb.Empty{}))
		return err
	}
	if err := call(e.token(t, "alice", "home")); err != nil {
		t.Fatal(err)
	}
	if err := call(e.key.ServiceKey()); err != nil {
		t.Fatal(err)
	}
	calls := func() []realtime.Principal {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(seen)
	}
	if seen := calls(); len(seen) != 2 || seen[0].UserID != "alice" || seen[0].HouseholdID != "home" || seen[0].Expiry.IsZero() ||
		seen[1].UserID != "dev" || !seen[1].Service {
		t.Errorf("the handler saw %+v", seen)
	}
	for _, bad := range []string{"", "not-a-token", e.token(t, "alice", "home") + "x"} {
		if err := call(bad); connect.CodeOf(err) != connect.CodeUnauthenticated {
			t.Errorf("token %q: %v, want Unauthenticated", bad, err)
		}
	}
	if len(calls()) != 2 {
		t.Errorf("the handler ran for a refused call")
	}
	if _, ok := realtime.Caller(context.Background()); ok {
		t.Error("Caller outside an RPC reported a caller")
	}
	if _, err := realtime.RequireUser(context.Background()); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Errorf("RequireUser outside an RPC: %v, want Unauthenticated", err)
	}
}

// TestClose: Close ends open streams with Unavailable, so that clients
// reconnect, and the emitter then fails with Unavailable.
func TestClose(t *testing.T) {
	t.Parallel()
	key, err := realtime.LoadDevKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rt, err := realtime.New(context.Background(), realtime.Options{Dev: key})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	rt.Mount(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	tok, _ := key.Token("alice", "home", time.Minute)
	rc := realtimeClient(srv, tok)
	res, err := rc.Subscribe(context.Background(), connect.NewRequest(&realtimev1.SubscribeRequest{}))
	if err != nil || !res.Receive() {
		t.Fatalf("Subscribe: %v", err)
	}
	ended := make(chan error, 1)
	go func() {
		for res.Receive() {
		}
		ended <- res.Err()
	}()
	if err := rt.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-ended:
		if connect.CodeOf(err) != connect.CodeUnavailable {
			t.Errorf("stream ended with %v, want Unavailable", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the stream outlived Close by 20s")
	}
	_, err = rt.Emitter().Broadcast(context.Background(), &realtimev1.Event{Payload: &realtimev1.Event_Notification{Notification: &systemv1.Notification{Message: "late"}}})
	if connect.CodeOf(realtime.ConnectError(err)) != connect.CodeUnavailable {
		t.Errorf("emit after Close: %v, want Unavailable", err)
	}
}

// TestNewOptions: New needs a way to verify tokens, and refuses modules
// that clash.
func TestNewOptions(t *testing.T) {
	t.Parallel()
	if _, err := realtime.New(context.Background(), realtime.Options{}); err == nil || !strings.Contains(err.Error(), "no way to verify tokens") {
		t.Errorf("New with zero Options: %v", err)
	}
	key, err := realtime.LoadDevKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m := remindersModule{}
	if _, err := realtime.New(context.Background(), realtime.Options{Dev: key, Modules: []realtime.Module{m, m}}); err == nil || !strings.Contains(err.Error(), "registered twice") {
		t.Errorf("New with a module twice: %v", err)
	}
}
