package client_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"connectrpc.com/connect"

	"github.com/honeydo/realtime/client"
	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	systemv1 "github.com/honeydo/realtime/gen/honeydo/system/v1"
	"github.com/honeydo/realtime/internal/auth"
	"github.com/honeydo/realtime/internal/broker"
	"github.com/honeydo/realtime/internal/server"
)

// This example follows the events of Alice's household while a backend
// service publishes one with the Publish RPC. Subscribe reconnects on its
// own; the handler sees each event once, in order.
func Example() {
	srv := startExampleServer() // realtimed --dev on a loopback port
	defer srv.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var connected sync.Once
	published := make(chan struct{})
	publish := func() {
		defer close(published)
		// Elsewhere, a backend service publishes with its service key.
		svc, err := client.NewRealtimeClient(client.Options{BaseURL: srv.URL, Token: srv.ServiceKey})
		if err != nil {
			log.Fatal(err)
		}
		_, err = svc.Publish(context.Background(), connect.NewRequest(&realtimev1.PublishRequest{
			Target: &realtimev1.Target{To: &realtimev1.Target_HouseholdId{HouseholdId: "home"}},
			Event: &realtimev1.Event{Payload: &realtimev1.Event_Notification{Notification: &systemv1.Notification{
				Level:   systemv1.Notification_LEVEL_INFO,
				Message: "Milk is back in stock",
			}}},
		}))
		if err != nil {
			log.Fatal(err)
		}
	}

	err := client.Subscribe(ctx, client.Options{
		BaseURL: srv.URL,
		// Token is called before every connection attempt: return a
		// session token that is valid now, e.g. from Clerk's getToken.
		Token: srv.Token,
		OnStatus: func(st client.Status) {
			switch st.State {
			case client.StateConnected:
				if !st.Reconnected {
					fmt.Printf("connected as %s in household %s\n", st.Welcome.GetUserId(), st.Welcome.GetHouseholdId())
				}
				connected.Do(func() { go publish() })
			case client.StateReconnecting:
				log.Printf("reconnecting in %v: %v", st.Delay, st.Err)
			}
		},
		OnResync: func(ctx context.Context, reason client.ResyncReason) error {
			// Events may have been missed: refetch the application's state
			// here, before the next event.
			log.Printf("resync: %v", reason)
			return nil
		},
	}, func(ctx context.Context, ev *realtimev1.Event) error {
		fmt.Println("notification:", ev.GetNotification().GetMessage())
		cancel() // one event is enough for this example
		return nil
	})
	fmt.Println(err)
	<-published
	// Output:
	// connected as alice in household home
	// notification: Milk is back in stock
	// context canceled
}

// exampleServer is a dev-mode server for examples.
type exampleServer struct {
	URL  string
	key  *auth.DevKey
	dir  string
	srv  *server.Server
	b    *broker.Memory
	done chan error
}

func startExampleServer() *exampleServer {
	dir, err := os.MkdirTemp("", "realtime-example-")
	if err != nil {
		log.Fatal(err)
	}
	key, err := auth.LoadOrCreateDevKey(dir)
	if err != nil {
		log.Fatal(err)
	}
	ver, err := auth.NewVerifier(auth.Config{Dev: key, DefaultHousehold: "home"})
	if err != nil {
		log.Fatal(err)
	}
	b := broker.NewMemory(broker.MemoryConfig{})
	srv, err := server.New(server.Config{
		Broker: b, Verifier: ver, Dev: key,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	s := &exampleServer{URL: "http://" + ln.Addr().String(), key: key, dir: dir, srv: srv, b: b, done: make(chan error, 1)}
	go func() { s.done <- srv.Serve(ln, "", "") }()
	return s
}

// Token mints a dev session token for alice in household home.
func (s *exampleServer) Token(context.Context) (string, error) {
	tok, _, err := s.key.Mint(auth.MintOptions{UserID: "alice", HouseholdID: "home", TTL: time.Minute})
	return tok, err
}

// ServiceKey returns the dev service key.
func (s *exampleServer) ServiceKey(context.Context) (string, error) {
	return s.key.ServiceKey(), nil
}

func (s *exampleServer) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
	<-s.done
	s.b.Close()
	os.RemoveAll(s.dir)
}
