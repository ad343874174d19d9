package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"connectrpc.com/connect"

	"github.com/honeydo/realtime/client"
	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	systemv1 "github.com/honeydo/realtime/gen/honeydo/system/v1"
	"github.com/honeydo/realtime/internal/auth"
	"github.com/honeydo/realtime/internal/broker"
	"github.com/honeydo/realtime/internal/module"
	"github.com/honeydo/realtime/internal/rpcerr"
	"github.com/honeydo/realtime/internal/server"
	"github.com/honeydo/realtime/internal/testkit"
)

// notesModule is a module that exists only in this test: one unary
// procedure, Post, that announces a note to the caller's household except
// the calling client. It reuses existing messages (a Notification in, a
// PublishResponse out) so that it needs no proto of its own.
type notesModule struct{}

const notesPost = "/honeydo.test.v1.NoteService/Post"

func (notesModule) Name() string { return "notes" }

func (notesModule) Mount(env module.Env) ([]module.Service, error) {
	post := func(ctx context.Context, req *connect.Request[systemv1.Notification]) (*connect.Response[realtimev1.PublishResponse], error) {
		p, err := auth.RequireUser(ctx)
		if err != nil {
			return nil, err
		}
		sent, err := env.Emitter.ToOthers(ctx, p.HouseholdID, &realtimev1.Event{
			Payload: &realtimev1.Event_Notification{Notification: req.Msg},
		})
		if err != nil {
			return nil, rpcerr.Error(err)
		}
		return connect.NewResponse(&realtimev1.PublishResponse{EventId: sent.ID, Cursor: sent.Cursor}), nil
	}
	return []module.Service{{
		Path:    "/honeydo.test.v1.NoteService/",
		Handler: connect.NewUnaryHandler(notesPost, post, env.HandlerOptions...),
	}}, nil
}

func withModules(mods ...module.Module) testkit.Option {
	return func(c *server.Config) { c.Modules = append(c.Modules, mods...) }
}

// TestModuleEndToEnd: a module the server has never heard of is served
// behind the same gate, its handler sees the verified caller and the
// calling client's origin, and its event reaches the household's streams
// on real Subscribe streams, tagged with the actor and the origin.
func TestModuleEndToEnd(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, withModules(notesModule{}))
	alice := srv.Token(t, "alice", "home", 0)
	bob := subscribe(t, srv.realtimeClient(t, clientKinds[0], srv.Token(t, "bob", "home", 0)), "")
	carol := subscribe(t, srv.realtimeClient(t, clientKinds[0], srv.Token(t, "carol", "other", 0)), "")

	post := func(token string, kind clientKind) (*connect.Response[realtimev1.PublishResponse], error) {
		opts := append([]connect.ClientOption{client.BearerToken(token), client.WithOrigin("alice-tab")}, kind.protocol...)
		c := connect.NewClient[systemv1.Notification, realtimev1.PublishResponse](testkit.HTTPClient(t, kind.h2c), srv.URL+notesPost, opts...)
		return c.CallUnary(context.Background(), connect.NewRequest(&systemv1.Notification{Message: "dinner at 7"}))
	}
	for _, kind := range clientKinds {
		res, err := post(alice, kind)
		if err != nil {
			t.Fatalf("%s: Post: %v", kind.name, err)
		}
		ev := bob.next(t)
		if ev.GetNotification().GetMessage() != "dinner at 7" || ev.GetSenderUserId() != "alice" || ev.GetOrigin() != "alice-tab" || ev.GetId() != res.Msg.GetEventId() {
			t.Fatalf("%s: bob got %v, want alice's note from alice-tab with id %s", kind.name, ev, res.Msg.GetEventId())
		}
	}
	// Carol, in another household, got none of it: the fence that follows
	// in the broadcast room is the first event she sees.
	if _, err := srv.Emitter.Broadcast(context.Background(), notification("fence")); err != nil {
		t.Fatal(err)
	}
	if ev := carol.next(t); ev.GetNotification().GetMessage() != "fence" {
		t.Errorf("carol got %v, want only the fence", ev)
	}

	if _, err := post("", clientKinds[0]); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Errorf("Post without a token: %v, want Unauthenticated", err)
	}
	if _, err := post(srv.Key.ServiceKey(), clientKinds[0]); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Errorf("Post with a service key: %v, want PermissionDenied", err)
	}
}

// badModule mounts whatever services it is given.
type badModule struct {
	name     string
	services []module.Service
}

func (m badModule) Name() string                               { return m.name }
func (m badModule) Mount(module.Env) ([]module.Service, error) { return m.services, nil }

// TestModuleConflicts: the server refuses, instead of panicking in
// http.ServeMux, a module that takes RealtimeService's path or another
// module's, a name registered twice, and a malformed service.
func TestModuleConflicts(t *testing.T) {
	t.Parallel()
	b := broker.NewMemory(broker.MemoryConfig{})
	t.Cleanup(func() { b.Close() })
	key, err := auth.LoadOrCreateDevKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(auth.Config{Dev: key, DefaultHousehold: "home"})
	if err != nil {
		t.Fatal(err)
	}
	h := http.NotFoundHandler()
	svc := func(path string) []module.Service { return []module.Service{{Path: path, Handler: h}} }
	for _, tc := range []struct {
		name string
		mods []module.Module
		want string
	}{
		{"realtime's path", []module.Module{badModule{"evil", svc("/honeydo.realtime.v1.RealtimeService/")}}, "already served by the server"},
		{"two modules, one path", []module.Module{badModule{"a", svc("/x.v1.S/")}, badModule{"b", svc("/x.v1.S/")}}, `already served by module "a"`},
		{"one name twice", []module.Module{badModule{"a", svc("/x.v1.S/")}, badModule{"a", svc("/x.v1.T/")}}, "registered twice"},
		{"no name", []module.Module{badModule{"", svc("/x.v1.S/")}}, "has no name"},
		{"bad path", []module.Module{badModule{"a", svc("x.v1.S")}}, "path of the form"},
		{"nil module", []module.Module{nil}, "is nil"},
	} {
		_, err := server.New(server.Config{Broker: b, Verifier: v, Modules: tc.mods})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}
