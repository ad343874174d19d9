package client_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/honeydo/realtime/client"
	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	shoppingv1 "github.com/honeydo/realtime/gen/honeydo/shopping/v1"
	"github.com/honeydo/realtime/gen/honeydo/shopping/v1/shoppingv1connect"
	"github.com/honeydo/realtime/internal/testkit"
	"github.com/honeydo/realtime/internal/testkit/poll"
)

// TestOriginSkipsOwnChanges: Alice runs two Go clients (a phone and a
// laptop), each with its own origin on its shopping calls and its
// subscriber. Each subscriber's handler sees the other client's change and
// not its own.
func TestOriginSkipsOwnChanges(t *testing.T) {
	srv := newTestServer(t)
	type device struct {
		origin string
		mu     sync.Mutex
		got    []string
	}
	devices := []*device{{origin: client.NewOrigin()}, {origin: client.NewOrigin()}}
	if devices[0].origin == devices[1].origin || len(devices[0].origin) != 22 {
		t.Fatalf("origins %q, %q", devices[0].origin, devices[1].origin)
	}
	for _, d := range devices {
		tk := srv.tokens("alice", time.Minute)
		start(t, client.Options{
			BaseURL: srv.URL,
			Token:   tk.Token,
			Origin:  d.origin,
		}, func(_ context.Context, ev *realtimev1.Event) error {
			d.mu.Lock()
			defer d.mu.Unlock()
			d.got = append(d.got, ev.GetItemAdded().GetItem().GetName()+ev.GetNotification().GetMessage())
			return nil
		})
	}
	poll.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		if n := srv.OpenStreams(); n != 2 {
			return fmt.Errorf("%d streams open, want 2", n)
		}
		return nil
	})
	for i, d := range devices {
		shop := shoppingv1connect.NewShoppingServiceClient(testkit.HTTPClient(t, false), srv.URL,
			connect.WithInterceptors(client.TokenInterceptor(srv.tokens("alice", time.Minute).Token)), client.WithOrigin(d.origin))
		if _, err := shop.AddItem(context.Background(), connect.NewRequest(&shoppingv1.AddItemRequest{Name: fmt.Sprint("from-", i)})); err != nil {
			t.Fatal(err)
		}
	}
	srv.publish(t, "home", "end")
	for i, d := range devices {
		want := []string{fmt.Sprint("from-", 1-i), "end"}
		poll.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
			d.mu.Lock()
			defer d.mu.Unlock()
			if len(d.got) < 2 {
				return fmt.Errorf("device %d got %v", i, d.got)
			}
			return nil
		})
		d.mu.Lock()
		got := slices.Clone(d.got)
		d.mu.Unlock()
		if !slices.Equal(got, want) {
			t.Fatalf("device %d got %v, want %v", i, got, want)
		}
	}
}
