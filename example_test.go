package realtime_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	realtime "github.com/honeydo/realtime"
	"github.com/honeydo/realtime/client"
	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	"github.com/honeydo/realtime/gen/honeydo/realtime/v1/realtimev1connect"
	systemv1 "github.com/honeydo/realtime/gen/honeydo/system/v1"
)

// completeChore is the procedure of the application's own Connect service
// in these examples. A real application uses its generated handler; the
// well-known wrapper types keep the examples free of a proto of their own.
const completeChore = "/acme.chores.v1.ChoresService/Complete"

// This example is an application that serves its own Connect service and
// the realtime service on one mux and one port. The realtime interceptor
// verifies the callers of both, so the application's handler knows who
// called (realtime.Caller) and tells the caller's household with a typed
// event. Production code sets Options.Clerk instead of Options.Dev.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "realtime-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	devKey, err := realtime.LoadDevKey(dir)
	if err != nil {
		log.Fatal(err)
	}

	rt, err := realtime.New(ctx, realtime.Options{Dev: devKey})
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close()

	complete := func(ctx context.Context, req *connect.Request[wrapperspb.StringValue]) (*connect.Response[emptypb.Empty], error) {
		caller, _ := realtime.Caller(ctx) // the interceptor refused calls without one
		ev := &realtimev1.Event{Payload: &realtimev1.Event_Notification{Notification: &systemv1.Notification{
			Level:   systemv1.Notification_LEVEL_SUCCESS,
			Message: caller.UserID + " completed " + req.Msg.GetValue(),
		}}}
		if _, err := rt.Emitter().ToHousehold(ctx, caller.HouseholdID, ev); err != nil {
			return nil, realtime.ConnectError(err)
		}
		return connect.NewResponse(&emptypb.Empty{}), nil
	}
	mux := http.NewServeMux()
	rt.Mount(mux)
	mux.Handle(completeChore, connect.NewUnaryHandler(completeChore, complete, connect.WithInterceptors(rt.Interceptor())))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	// Bob has the app open.
	bobToken, _ := devKey.Token("bob", "home", 0)
	events := subscribe(ctx, srv, bobToken)
	defer events.close()

	// Alice completes a chore through the application's own service.
	aliceToken, _ := devKey.Token("alice", "home", 0)
	chores := connect.NewClient[wrapperspb.StringValue, emptypb.Empty](srv.Client(), srv.URL+completeChore, client.BearerToken(aliceToken))
	if _, err := chores.CallUnary(ctx, connect.NewRequest(wrapperspb.String("the dishes"))); err != nil {
		log.Fatal(err)
	}
	ev := <-events.c
	fmt.Printf("bob sees: %s (from %s)\n", ev.GetNotification().GetMessage(), ev.GetSenderUserId())

	// Without a token the application's service refuses the call, as
	// RealtimeService does.
	anonymous := connect.NewClient[wrapperspb.StringValue, emptypb.Empty](srv.Client(), srv.URL+completeChore)
	_, err = anonymous.CallUnary(ctx, connect.NewRequest(wrapperspb.String("the laundry")))
	fmt.Println("anonymous:", connect.CodeOf(err))
	// Output:
	// bob is in [user:bob household:home broadcast]
	// bob sees: alice completed the dishes (from alice)
	// anonymous: unauthenticated
}

// This example is an application handler that tells the rest of the
// household, but not the user who acted, on any of their devices
// (realtime.ExceptUser). To skip only the calling tab or app, which
// already shows its own change, use ToOthers: the actor's other devices
// then hear of it too.
func ExampleExceptUser() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "realtime-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	devKey, err := realtime.LoadDevKey(dir)
	if err != nil {
		log.Fatal(err)
	}
	rt, err := realtime.New(ctx, realtime.Options{Dev: devKey})
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close()

	complete := func(ctx context.Context, req *connect.Request[wrapperspb.StringValue]) (*connect.Response[emptypb.Empty], error) {
		caller, err := realtime.RequireUser(ctx)
		if err != nil {
			return nil, err
		}
		ev := &realtimev1.Event{Payload: &realtimev1.Event_Notification{Notification: &systemv1.Notification{
			Message: caller.UserID + " completed " + req.Msg.GetValue(),
		}}}
		_, err = rt.Emitter().ToHousehold(ctx, caller.HouseholdID, ev, realtime.ExceptUser(caller.UserID))
		if err != nil {
			return nil, realtime.ConnectError(err)
		}
		return connect.NewResponse(&emptypb.Empty{}), nil
	}
	mux := http.NewServeMux()
	rt.Mount(mux)
	mux.Handle(completeChore, connect.NewUnaryHandler(completeChore, complete, connect.WithInterceptors(rt.Interceptor())))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	aliceToken, _ := devKey.Token("alice", "home", 0)
	bobToken, _ := devKey.Token("bob", "home", 0)
	alice := subscribe(ctx, srv, aliceToken)
	defer alice.close()
	bob := subscribe(ctx, srv, bobToken)
	defer bob.close()

	chores := connect.NewClient[wrapperspb.StringValue, emptypb.Empty](srv.Client(), srv.URL+completeChore, client.BearerToken(aliceToken))
	if _, err := chores.CallUnary(ctx, connect.NewRequest(wrapperspb.String("the dishes"))); err != nil {
		log.Fatal(err)
	}
	// A broadcast that follows: events of a room arrive in order, so
	// whatever alice received before it would come first.
	fence := &realtimev1.Event{Payload: &realtimev1.Event_Notification{Notification: &systemv1.Notification{Message: "good night"}}}
	if _, err := rt.Emitter().Broadcast(ctx, fence); err != nil {
		log.Fatal(err)
	}
	fmt.Println("bob's next event:", (<-bob.c).GetNotification().GetMessage())
	fmt.Println("alice's next event:", (<-alice.c).GetNotification().GetMessage())
	// Output:
	// alice is in [user:alice household:home broadcast]
	// bob is in [user:bob household:home broadcast]
	// bob's next event: alice completed the dishes
	// alice's next event: good night
}

// realtimeClient is a RealtimeService client of srv with token.
func realtimeClient(srv *httptest.Server, token string) realtimev1connect.RealtimeServiceClient {
	return realtimev1connect.NewRealtimeServiceClient(srv.Client(), srv.URL, client.BearerToken(token))
}

// stream is an open Subscribe stream whose events arrive on c.
type stream struct {
	c     chan *realtimev1.Event
	close func()
}

// subscribe opens a Subscribe stream with token, prints the rooms its
// welcome frame lists and delivers its events on the returned stream.
func subscribe(ctx context.Context, srv *httptest.Server, token string) *stream {
	rc := realtimeClient(srv, token)
	ctx, cancel := context.WithCancel(ctx)
	res, err := rc.Subscribe(ctx, connect.NewRequest(&realtimev1.SubscribeRequest{}))
	if err != nil || !res.Receive() {
		log.Fatalf("subscribe: %v %v", err, res.Err())
	}
	w := res.Msg().GetWelcome()
	fmt.Printf("%s is in %v\n", w.GetUserId(), w.GetRooms())
	s := &stream{c: make(chan *realtimev1.Event, 16)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for res.Receive() {
			for _, ev := range res.Msg().GetEvents().GetEvents() {
				select {
				case s.c <- ev:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	s.close = func() {
		cancel()
		res.Close()
		<-done
	}
	return s
}

// This example emits while holding a lock that other requests need: a
// mutex here, standing for a database transaction. With WithoutWaiting the
// emit returns as soon as the event is accepted, instead of waiting (up to
// 2 ms, with the in-memory broker) for a stream of the household that is
// far behind, with the lock held.
func ExampleWithoutWaiting() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "realtime-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	devKey, err := realtime.LoadDevKey(dir)
	if err != nil {
		log.Fatal(err)
	}
	rt, err := realtime.New(ctx, realtime.Options{Dev: devKey})
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close()

	var (
		mu     sync.Mutex // the transaction
		chores = map[string]bool{}
	)
	complete := func(ctx context.Context, household, chore string) error {
		mu.Lock()
		defer mu.Unlock()
		chores[chore] = true
		ev := &realtimev1.Event{Payload: &realtimev1.Event_Notification{Notification: &systemv1.Notification{
			Message: chore + " is done",
		}}}
		_, err := rt.Emitter().ToHousehold(ctx, household, ev, realtime.WithoutWaiting())
		return err
	}
	if err := complete(ctx, "home", "dishes"); err != nil {
		log.Fatal(realtime.ConnectError(err))
	}
	fmt.Println("dishes done:", chores["dishes"])
	// Output: dishes done: true
}
