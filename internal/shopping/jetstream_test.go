package shopping

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	shoppingv1 "github.com/honeydo/realtime/gen/honeydo/shopping/v1"
	"github.com/honeydo/realtime/internal/broker"
	"github.com/honeydo/realtime/internal/module"
	"github.com/honeydo/realtime/internal/room"
	"github.com/honeydo/realtime/internal/testkit/natstest"
	"github.com/honeydo/realtime/internal/testkit/syncbuf"
)

// TestServiceJetStreamNATSDown runs the service on the real JetStream
// broker: with NATS stopped AddItem fails with Unavailable and the list is
// unchanged; with NATS back (the broker reconnects by itself) the retried
// AddItem succeeds, and bob receives its event, and only its event.
func TestServiceJetStreamNATSDown(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a nats-server")
	}
	t.Parallel()
	n := natstest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	js, err := broker.NewJetStream(ctx, broker.JetStreamConfig{
		URL:    n.URL(),
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { js.Close() })
	logs := &syncbuf.Buffer{}
	svc := NewService(newTestStore(t), module.NewEmitter(js), slog.New(slog.NewTextHandler(logs, nil)))
	alice := as("alice", "home")
	list := func() []*shoppingv1.ShoppingItem {
		t.Helper()
		res, err := svc.ListItems(alice, connect.NewRequest(&shoppingv1.ListItemsRequest{}))
		if err != nil {
			t.Fatalf("ListItems: %v", err)
		}
		return res.Msg.Items
	}
	add := func(name string) (*shoppingv1.ShoppingItem, error) {
		res, err := svc.AddItem(alice, connect.NewRequest(&shoppingv1.AddItemRequest{Name: name}))
		if err != nil {
			return nil, err
		}
		return res.Msg.Item, nil
	}

	bob, err := js.Subscribe(ctx, broker.SubscribeOptions{UserID: "bob", Rooms: []room.Name{room.Household("home")}})
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	milk, err := add("Milk")
	if err != nil {
		t.Fatalf("AddItem with NATS up: %v", err)
	}
	before := list()

	n.Stop()
	start := time.Now()
	_, err = add("Eggs")
	if connect.CodeOf(err) != connect.CodeUnavailable || !errors.Is(err, broker.ErrUnavailable) ||
		!strings.Contains(err.Error(), "nothing was changed") {
		t.Fatalf("AddItem with NATS down = %v, want Unavailable wrapping broker.ErrUnavailable", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("AddItem took %v to fail", d)
	}
	if got := list(); !sameItems(got, before) {
		t.Fatalf("the refused AddItem changed the list:\n got %v\nwant %v", got, before)
	}

	// Retrying is safe: every refused attempt changed nothing.
	n.Start(t)
	var eggs *shoppingv1.ShoppingItem
	deadline := time.Now().Add(10 * time.Second)
	for {
		eggs, err = add("Eggs")
		if err == nil {
			break
		}
		if connect.CodeOf(err) != connect.CodeUnavailable || time.Now().After(deadline) {
			t.Fatalf("AddItem after NATS restarted: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := list(); len(got) != 2 || got[0].Id != milk.Id || got[1].Id != eggs.Id {
		t.Fatalf("list = %v, want [Milk Eggs]", got)
	}

	// bob hears Milk, then Eggs once: no refused attempt reached him.
	var heard []string
	timeout := time.After(10 * time.Second)
	for len(heard) < 2 {
		select {
		case <-bob.Ready():
		case <-bob.Done():
			t.Fatalf("bob's subscription ended: %v", bob.Err())
		case <-timeout:
			t.Fatalf("bob heard %v, want the adds of Milk and Eggs", heard)
		}
		for _, m := range bob.Next(nil) {
			heard = append(heard, m.Event.GetItemAdded().GetItem().GetId())
		}
	}
	if len(heard) != 2 || heard[0] != milk.Id || heard[1] != eggs.Id {
		t.Fatalf("bob heard %v, want [%s %s]", heard, milk.Id, eggs.Id)
	}
}
