package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpcreflect"

	"github.com/honeydo/realtime/client"
	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	"github.com/honeydo/realtime/gen/honeydo/realtime/v1/realtimev1connect"
	shoppingv1 "github.com/honeydo/realtime/gen/honeydo/shopping/v1"
	"github.com/honeydo/realtime/gen/honeydo/shopping/v1/shoppingv1connect"
	systemv1 "github.com/honeydo/realtime/gen/honeydo/system/v1"
	"github.com/honeydo/realtime/internal/broker"
	"github.com/honeydo/realtime/internal/server"
	"github.com/honeydo/realtime/internal/testkit"
	"github.com/honeydo/realtime/internal/testkit/poll"
)

func notification(text string) *realtimev1.Event {
	return &realtimev1.Event{Payload: &realtimev1.Event_Notification{Notification: &systemv1.Notification{Message: text}}}
}

// TestEveryProtocol runs the same calls over Connect (binary and JSON),
// gRPC and gRPC-Web, on HTTP/1.1 and h2c.
func TestEveryProtocol(t *testing.T) {
	srv := newTestServer(t)
	for _, kind := range clientKinds {
		t.Run(kind.name, func(t *testing.T) {
			ctx := context.Background()
			c := srv.realtimeClient(t, kind, srv.Token(t, "alice", "home", time.Minute))
			ping, err := c.Ping(ctx, connect.NewRequest(&realtimev1.PingRequest{}))
			if err != nil {
				t.Fatal(err)
			}
			if d := time.Since(ping.Msg.GetTime().AsTime()); d < 0 || d > time.Minute {
				t.Fatalf("ping time off by %v", d)
			}
			who, err := c.WhoAmI(ctx, connect.NewRequest(&realtimev1.WhoAmIRequest{}))
			if err != nil {
				t.Fatal(err)
			}
			wantRooms := []string{"user:alice", "household:home", "broadcast"}
			if who.Msg.GetUserId() != "alice" || who.Msg.GetHouseholdId() != "home" || !slices.Equal(who.Msg.GetRooms(), wantRooms) {
				t.Fatalf("WhoAmI = %v", who.Msg)
			}
			s := subscribe(t, c, "")
			if w := s.Welcome; w.GetUserId() != "alice" || w.GetResume() != realtimev1.ResumeStatus_RESUME_STATUS_UNSPECIFIED || w.GetCursor() == "" || !slices.Equal(w.GetRooms(), wantRooms) {
				t.Fatalf("welcome = %v", w)
			}
			for i := range 3 {
				if _, err := srv.Emitter.ToHousehold(ctx, "home", notification(fmt.Sprint(kind.name, i))); err != nil {
					t.Fatal(err)
				}
			}
			for i := range 3 {
				ev := s.next(t)
				if got, want := ev.GetNotification().GetMessage(), fmt.Sprint(kind.name, i); got != want {
					t.Fatalf("event %d = %q, want %q", i, got, want)
				}
				if ev.GetCursor() == "" || ev.GetId() == "" || ev.GetTime() == nil {
					t.Fatalf("event lacks envelope fields: %v", ev)
				}
			}
		})
	}
}

func TestAuthErrors(t *testing.T) {
	srv := newTestServer(t)
	ctx := context.Background()
	kind := clientKinds[0]
	t.Run("no token", func(t *testing.T) {
		c := realtimev1connect.NewRealtimeServiceClient(testkit.HTTPClient(t, false), srv.URL)
		_, err := c.Ping(ctx, connect.NewRequest(&realtimev1.PingRequest{}))
		wantCode(t, err, connect.CodeUnauthenticated)
		_, err = trySubscribe(t, c, "")
		wantCode(t, err, connect.CodeUnauthenticated)
	})
	t.Run("garbage token", func(t *testing.T) {
		_, err := srv.realtimeClient(t, kind, "not.a.jwt").Ping(ctx, connect.NewRequest(&realtimev1.PingRequest{}))
		wantCode(t, err, connect.CodeUnauthenticated)
	})
	t.Run("user may not publish", func(t *testing.T) {
		c := srv.realtimeClient(t, kind, srv.Token(t, "alice", "home", time.Minute))
		_, err := c.Publish(ctx, connect.NewRequest(&realtimev1.PublishRequest{
			Target: &realtimev1.Target{To: &realtimev1.Target_Broadcast_{Broadcast: &realtimev1.Target_Broadcast{}}},
			Event:  notification("x"),
		}))
		wantCode(t, err, connect.CodePermissionDenied)
	})
	t.Run("service publishes", func(t *testing.T) {
		alice := subscribe(t, srv.realtimeClient(t, kind, srv.Token(t, "alice", "home", time.Minute)), "")
		bob := subscribe(t, srv.realtimeClient(t, kind, srv.Token(t, "bob", "home", time.Minute)), "")
		svc := srv.realtimeClient(t, kind, srv.Key.ServiceKey())
		res, err := svc.Publish(ctx, connect.NewRequest(&realtimev1.PublishRequest{
			Target: &realtimev1.Target{To: &realtimev1.Target_HouseholdId{HouseholdId: "home"}, ExceptUserId: "alice"},
			Event:  &realtimev1.Event{SenderUserId: "alice", Payload: notification("from service").Payload},
		}))
		if err != nil {
			t.Fatal(err)
		}
		ev := bob.next(t)
		if ev.GetCursor() != res.Msg.GetCursor() || ev.GetSenderUserId() != "alice" || ev.GetNotification().GetMessage() != "from service" {
			t.Fatalf("bob got %v, publish said %v", ev, res.Msg)
		}
		alice.quiet(t)
	})
	t.Run("invalid publish", func(t *testing.T) {
		svc := srv.realtimeClient(t, kind, srv.Key.ServiceKey())
		for name, req := range map[string]*realtimev1.PublishRequest{
			"no target":  {Event: notification("x")},
			"no payload": {Target: &realtimev1.Target{To: &realtimev1.Target_UserId{UserId: "u"}}, Event: &realtimev1.Event{}},
			"empty user": {Target: &realtimev1.Target{To: &realtimev1.Target_UserId{}}, Event: notification("x")},
			"cursor set": {Target: &realtimev1.Target{To: &realtimev1.Target_UserId{UserId: "u"}}, Event: &realtimev1.Event{Cursor: "a_1", Payload: notification("x").Payload}},
		} {
			_, err := svc.Publish(ctx, connect.NewRequest(req))
			if connect.CodeOf(err) != connect.CodeInvalidArgument {
				t.Errorf("%s: %v, want InvalidArgument", name, err)
			}
		}
	})
	t.Run("bad cursor", func(t *testing.T) {
		c := srv.realtimeClient(t, kind, srv.Token(t, "alice", "home", time.Minute))
		for _, cursor := range []string{"garbage", "abc_", "A_1", "abc_01"} {
			_, err := trySubscribe(t, c, cursor)
			wantCode(t, err, connect.CodeInvalidArgument)
		}
	})
}

// TestHouseholdIsolation publishes random events to random households and
// users; every stream must receive exactly its own, in order.
func TestHouseholdIsolation(t *testing.T) {
	srv := newTestServer(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, 11))
	type member struct{ user, household string }
	var members []member
	for h := range 4 {
		for u := range 3 {
			members = append(members, member{fmt.Sprintf("u%d-%d", h, u), fmt.Sprintf("h%d", h)})
		}
	}
	streams := map[string]*stream{}
	for _, m := range members {
		kind := clientKinds[rng.IntN(len(clientKinds))]
		streams[m.user] = subscribe(t, srv.realtimeClient(t, kind, srv.Token(t, m.user, m.household, time.Minute)), "")
	}
	want := map[string][]string{}
	for i := range 400 {
		m := members[rng.IntN(len(members))]
		text := fmt.Sprint(i)
		switch rng.IntN(4) {
		case 0:
			srv.Emitter.ToUser(ctx, m.user, notification(text))
			want[m.user] = append(want[m.user], text)
		case 1:
			// To the household but the acting client, which skips it by
			// its origin: on the wire every member's stream gets it.
			srv.Emitter.ToOthers(broker.WithOrigin(ctx, "tab-"+m.user), m.household, notification(text))
			for _, o := range members {
				if o.household == m.household {
					want[o.user] = append(want[o.user], text)
				}
			}
		case 2:
			srv.Emitter.ToHousehold(ctx, m.household, notification(text))
			for _, o := range members {
				if o.household == m.household {
					want[o.user] = append(want[o.user], text)
				}
			}
		case 3:
			if i%20 == 0 {
				srv.Emitter.Broadcast(ctx, notification(text))
				for _, o := range members {
					want[o.user] = append(want[o.user], text)
				}
			}
		}
	}
	for _, m := range members {
		s := streams[m.user]
		var got []string
		for range want[m.user] {
			got = append(got, s.next(t).GetNotification().GetMessage())
		}
		if !slices.Equal(got, want[m.user]) {
			t.Fatalf("%s got %v\nwant %v", m.user, got, want[m.user])
		}
		s.quiet(t)
	}
}

// TestShoppingReachesTheActorsOtherSessions drives the reference module
// over HTTP with Alice signed in twice (a phone and a laptop: two tokens,
// two session ids), Bob in her household and Carol in another. A change
// made on Alice's phone reaches her laptop and Bob, tagged with the phone's
// origin, so that only the phone can tell it is its own; Carol gets nothing.
func TestShoppingReachesTheActorsOtherSessions(t *testing.T) {
	srv := newTestServer(t)
	ctx := context.Background()
	kind := clientKinds[0]
	phoneTok := srv.Token(t, "alice", "home", time.Minute)
	laptopTok := srv.Token(t, "alice", "home", time.Minute)
	phone := subscribe(t, srv.realtimeClient(t, kind, phoneTok), "")
	laptop := subscribe(t, srv.realtimeClient(t, kind, laptopTok), "")
	if phone.Welcome.GetSessionId() == laptop.Welcome.GetSessionId() {
		t.Fatalf("both of Alice's streams have session %q; the test needs two", phone.Welcome.GetSessionId())
	}
	bob := subscribe(t, srv.realtimeClient(t, kind, srv.Token(t, "bob", "home", time.Minute)), "")
	carol := subscribe(t, srv.realtimeClient(t, kind, srv.Token(t, "carol", "other", time.Minute)), "")
	const origin = "alice-phone-tab-1"
	shop := shoppingv1connect.NewShoppingServiceClient(testkit.HTTPClient(t, false), srv.URL,
		client.BearerToken(phoneTok), client.WithOrigin(origin))

	added, err := shop.AddItem(ctx, connect.NewRequest(&shoppingv1.AddItemRequest{Name: "Oat milk", Quantity: 2, Unit: "l"}))
	if err != nil {
		t.Fatal(err)
	}
	id := added.Msg.GetItem().GetId()
	checked := true
	if _, err := shop.UpdateItem(ctx, connect.NewRequest(&shoppingv1.UpdateItemRequest{ItemId: id, Checked: &checked})); err != nil {
		t.Fatal(err)
	}
	if _, err := shop.RemoveItem(ctx, connect.NewRequest(&shoppingv1.RemoveItemRequest{ItemId: id})); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*stream{"laptop": laptop, "bob": bob, "phone": phone} {
		var kinds []string
		for range 3 {
			ev := s.next(t)
			if ev.GetSenderUserId() != "alice" || ev.GetOrigin() != origin {
				t.Fatalf("%s got sender %q origin %q, want alice and %q", name, ev.GetSenderUserId(), ev.GetOrigin(), origin)
			}
			switch {
			case ev.GetItemAdded().GetItem().GetId() == id:
				kinds = append(kinds, "added")
			case ev.GetItemUpdated().GetItem().GetChecked():
				kinds = append(kinds, "updated")
			case ev.GetItemRemoved().GetItemId() == id:
				kinds = append(kinds, "removed")
			}
		}
		if fmt.Sprint(kinds) != "[added updated removed]" {
			t.Fatalf("%s got %v", name, kinds)
		}
		s.quiet(t)
	}

	// A call without the header causes events without an origin.
	if _, err := srv.shoppingClient(t, laptopTok).AddItem(ctx, connect.NewRequest(&shoppingv1.AddItemRequest{Name: "Eggs"})); err != nil {
		t.Fatal(err)
	}
	if ev := bob.next(t); ev.GetOrigin() != "" || ev.GetItemAdded().GetItem().GetName() != "Eggs" {
		t.Fatalf("bob got %v", ev)
	}

	// Carol cannot touch Alice's household's item: NotFound, not a leak.
	carolShop := srv.shoppingClient(t, srv.Token(t, "carol", "other", time.Minute))
	_, err = carolShop.RemoveItem(ctx, connect.NewRequest(&shoppingv1.RemoveItemRequest{ItemId: id}))
	wantCode(t, err, connect.CodeNotFound)
	_, err = shop.AddItem(ctx, connect.NewRequest(&shoppingv1.AddItemRequest{Name: "   "}))
	wantCode(t, err, connect.CodeInvalidArgument)
	carol.quiet(t)
}

// TestOriginHeaderValidated: a malformed Realtime-Origin fails the call
// with InvalidArgument, before anything changes.
func TestOriginHeaderValidated(t *testing.T) {
	srv := newTestServer(t)
	ctx := context.Background()
	tok := srv.Token(t, "alice", "home", time.Minute)
	bob := subscribe(t, srv.realtimeClient(t, clientKinds[0], srv.Token(t, "bob", "home", time.Minute)), "")
	for _, bad := range []string{"has space", strings.Repeat("o", 129), "tab/1", "é"} {
		shop := shoppingv1connect.NewShoppingServiceClient(testkit.HTTPClient(t, false), srv.URL,
			client.BearerToken(tok), client.WithOrigin(bad))
		_, err := shop.AddItem(ctx, connect.NewRequest(&shoppingv1.AddItemRequest{Name: "Milk"}))
		wantCode(t, err, connect.CodeInvalidArgument)
	}
	bob.quiet(t)
}

// TestPublishWithOrigin: a backend service acting for Alice copies her
// request's Realtime-Origin into the event and targets her household;
// every stream of the household gets it with that origin, another
// household gets nothing, and a malformed origin is InvalidArgument.
func TestPublishWithOrigin(t *testing.T) {
	srv := newTestServer(t)
	ctx := context.Background()
	kind := clientKinds[0]
	alice := subscribe(t, srv.realtimeClient(t, kind, srv.Token(t, "alice", "home", time.Minute)), "")
	bob := subscribe(t, srv.realtimeClient(t, kind, srv.Token(t, "bob", "home", time.Minute)), "")
	carol := subscribe(t, srv.realtimeClient(t, kind, srv.Token(t, "carol", "other", time.Minute)), "")
	svc := srv.realtimeClient(t, kind, srv.Key.ServiceKey())
	publish := func(origin string) error {
		_, err := svc.Publish(ctx, connect.NewRequest(&realtimev1.PublishRequest{
			Target: &realtimev1.Target{To: &realtimev1.Target_HouseholdId{HouseholdId: "home"}},
			Event:  &realtimev1.Event{SenderUserId: "alice", Origin: origin, Payload: notification("done").Payload},
		}))
		return err
	}
	if err := publish("alice-tab-7"); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*stream{"alice": alice, "bob": bob} {
		if ev := s.next(t); ev.GetOrigin() != "alice-tab-7" {
			t.Fatalf("%s got origin %q", name, ev.GetOrigin())
		}
	}
	wantCode(t, publish("not an origin"), connect.CodeInvalidArgument)
	alice.quiet(t)
	bob.quiet(t)
	carol.quiet(t)
}

func TestResumeOverHTTP(t *testing.T) {
	srv := newTestServer(t)
	ctx := context.Background()
	kind := clientKinds[1]
	c := srv.realtimeClient(t, kind, srv.Token(t, "bob", "home", time.Minute))
	s := subscribe(t, c, "")
	for i := range 3 {
		srv.Emitter.ToHousehold(ctx, "home", notification(fmt.Sprint(i)))
	}
	last := ""
	for range 2 {
		last = s.next(t).GetCursor()
	}
	s.Close()
	for i := 3; i < 6; i++ {
		srv.Emitter.ToHousehold(ctx, "home", notification(fmt.Sprint(i)))
	}
	r := subscribe(t, c, last)
	if r.Welcome.GetResume() != realtimev1.ResumeStatus_RESUME_STATUS_RESUMED || r.Welcome.GetCursor() != last {
		t.Fatalf("welcome = %v", r.Welcome)
	}
	var got []string
	for range 4 {
		got = append(got, r.next(t).GetNotification().GetMessage())
	}
	if !slices.Equal(got, []string{"2", "3", "4", "5"}) {
		t.Fatalf("resumed with %v", got)
	}
	r.quiet(t)
	// A cursor from a previous incarnation of the server: resync.
	e := subscribe(t, c, "oldepoch_5")
	if e.Welcome.GetResume() != realtimev1.ResumeStatus_RESUME_STATUS_EPOCH_CHANGED {
		t.Fatalf("welcome = %v", e.Welcome)
	}
}

func TestSlowSubscriberIsCutOff(t *testing.T) {
	srv := newTestServer(t, func(c *server.Config) { c.QueueSize = 16 })
	kind := clientKinds[1]
	fast := subscribe(t, srv.realtimeClient(t, kind, srv.Token(t, "fast", "home", time.Minute)), "")
	// The slow client opens a stream and then never reads: its TCP window
	// fills, the server's writes block, and its queue overflows.
	_, rs := tinyWindowStream(t, srv, "slow")
	// Publish until the slow one has been cut off; the fast one gets every
	// event, undelayed.
	publishUntilCut(t, srv, fast)
	for rs.Receive() {
	}
	wantCode(t, rs.Err(), connect.CodeResourceExhausted)
}

func TestGracefulShutdownEndsStreams(t *testing.T) {
	srv := newTestServer(t)
	const n = 1000
	streams := make([]*stream, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	// gRPC streams multiplexed over h2c connections that are open before
	// the burst, 50 streams on each (under any per-connection stream
	// limit the server sets).
	conns := make([]realtimeClientPair, n/50)
	shared := make([]*testkit.SharedH2C, len(conns))
	for i := range conns {
		shared[i] = testkit.NewSharedH2C(t, srv.URL)
		conns[i] = realtimeClientPair{kind: clientKinds[3], http: shared[i]}
	}
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := conns[i%len(conns)].client(srv.URL, srv.Token(t, fmt.Sprint("u", i), "home", time.Minute))
			s, err := trySubscribe(t, c, "")
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			streams[i] = s
		}()
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	if got := srv.OpenStreams(); got != n {
		t.Fatalf("%d open streams, want %d", got, n)
	}
	for i, c := range shared {
		if d := c.Dials(); d != 1 {
			t.Fatalf("h2c client %d dialled %d connections, want 1", i, d)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	t.Logf("shutdown with %d open streams took %v", n, time.Since(start))
	for _, s := range streams {
		wantCode(t, s.end(t, 30*time.Second), connect.CodeUnavailable)
	}
}

func TestTokenExpiryEndsStream(t *testing.T) {
	srv := newTestServer(t, func(c *server.Config) { c.TokenGrace = 100 * time.Millisecond })
	c := srv.realtimeClient(t, clientKinds[0], srv.Token(t, "alice", "home", time.Second))
	s := subscribe(t, c, "")
	if s.Welcome.GetExpireTime() == nil {
		t.Fatal("welcome has no expire_time")
	}
	err := s.end(t, 10*time.Second)
	wantCode(t, err, connect.CodeUnauthenticated)
}

func TestHeartbeat(t *testing.T) {
	srv := newTestServer(t, func(c *server.Config) { c.Heartbeat = 50 * time.Millisecond })
	c := srv.realtimeClient(t, clientKinds[0], srv.Token(t, "alice", "home", time.Minute))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rs, err := c.Subscribe(ctx, connect.NewRequest(&realtimev1.SubscribeRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	beats := 0
	for beats < 3 && rs.Receive() {
		if rs.Msg().GetHeartbeat() != nil {
			beats++
		}
	}
	if beats < 3 {
		t.Fatalf("got %d heartbeats: %v", beats, rs.Err())
	}
}

func TestLimits(t *testing.T) {
	t.Run("streams per user", func(t *testing.T) {
		srv := newTestServer(t, func(c *server.Config) { c.MaxStreamsPerUser = 2 })
		c := srv.realtimeClient(t, clientKinds[1], srv.Token(t, "alice", "home", time.Minute))
		first := subscribe(t, c, "")
		subscribe(t, c, "")
		_, err := trySubscribe(t, c, "")
		wantCode(t, err, connect.CodeResourceExhausted)
		first.Close()
		poll.Eventually(t, 5*time.Second, 10*time.Millisecond, func() error {
			s, err := trySubscribe(t, c, "")
			if err == nil {
				s.Close()
			}
			return err
		})
	})
	t.Run("rate limit", func(t *testing.T) {
		srv := newTestServer(t, func(c *server.Config) { c.RateLimit = server.RateLimit{PerSecond: 1, Burst: 3} })
		// A user whose id is "dev", the dev service's name: the two must
		// not share a bucket.
		c := srv.realtimeClient(t, clientKinds[0], srv.Token(t, "dev", "home", time.Minute))
		var err error
		for range 10 {
			if _, err = c.Ping(context.Background(), connect.NewRequest(&realtimev1.PingRequest{})); err != nil {
				break
			}
		}
		wantCode(t, err, connect.CodeResourceExhausted)
		// Another user has a bucket of their own.
		other := srv.realtimeClient(t, clientKinds[0], srv.Token(t, "bob", "home", time.Minute))
		if _, err := other.Ping(context.Background(), connect.NewRequest(&realtimev1.PingRequest{})); err != nil {
			t.Fatal(err)
		}
		// Opening a stream draws on the same bucket.
		_, err = trySubscribe(t, c, "")
		wantCode(t, err, connect.CodeResourceExhausted)
		svc := srv.realtimeClient(t, clientKinds[0], srv.Key.ServiceKey())
		if _, err := svc.Ping(context.Background(), connect.NewRequest(&realtimev1.PingRequest{})); err != nil {
			t.Fatalf("the dev service shares the user dev's bucket: %v", err)
		}
	})
	t.Run("oversized request", func(t *testing.T) {
		srv := newTestServer(t, func(c *server.Config) { c.ReadMaxBytes = 1024 })
		c := srv.realtimeClient(t, clientKinds[0], srv.Key.ServiceKey())
		_, err := c.Publish(context.Background(), connect.NewRequest(&realtimev1.PublishRequest{
			Target: &realtimev1.Target{To: &realtimev1.Target_UserId{UserId: "u"}},
			Event:  notification(string(bytes.Repeat([]byte("x"), 4096))),
		}))
		wantCode(t, err, connect.CodeResourceExhausted)
	})
}

func TestNoGoroutineLeak(t *testing.T) {
	srv := newTestServer(t)
	c := srv.realtimeClient(t, clientKinds[1], srv.Token(t, "alice", "home", time.Minute))
	subscribe(t, c, "").Close() // warm up the connection
	base := runtime.NumGoroutine()
	for range 200 {
		subscribe(t, c, "").Close()
	}
	waitGoroutines(t, base)
	poll.Eventually(t, 5*time.Second, 10*time.Millisecond, func() error {
		if n := srv.OpenStreams(); n != 0 {
			return fmt.Errorf("%d streams still open", n)
		}
		if n := srv.Broker.Stats().Subscriptions; n != 0 {
			return fmt.Errorf("%d subscriptions still in the broker", n)
		}
		return nil
	})
}

func TestReflectionAndHealth(t *testing.T) {
	srv := newTestServer(t)
	rc := grpcreflect.NewClient(testkit.HTTPClient(t, true), srv.URL)
	rs := rc.NewStream(context.Background())
	defer rs.Close()
	names, err := rs.ListServices()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range names {
		got = append(got, string(n))
	}
	for _, want := range []string{"honeydo.realtime.v1.RealtimeService", "honeydo.shopping.v1.ShoppingService"} {
		if !slices.Contains(got, want) {
			t.Errorf("reflection lists %v, missing %s", got, want)
		}
	}
	res, err := http.Post(srv.URL+"/grpc.health.v1.Health/Check", "application/json", bytes.NewReader([]byte("{}")))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	var health struct{ Status string }
	if err := json.Unmarshal(body, &health); err != nil || health.Status != "SERVING_STATUS_SERVING" && health.Status != "SERVING" {
		t.Fatalf("health answered %s (%v)", body, err)
	}
}
