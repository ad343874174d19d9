package shopping_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"connectrpc.com/connect"

	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	shoppingv1 "github.com/honeydo/realtime/gen/honeydo/shopping/v1"
	"github.com/honeydo/realtime/internal/auth"
	"github.com/honeydo/realtime/internal/broker"
	"github.com/honeydo/realtime/internal/module"
	"github.com/honeydo/realtime/internal/room"
	"github.com/honeydo/realtime/internal/shopping"
)

// This example is how a module emits an event: wrap the module's payload in
// a realtimev1.Event with the actor as sender and send it to the household
// with ToOthers, in the handler's context: the event carries the origin of
// the calling client (the server's interceptor put it in the context), which
// already shows the change and skips it, while the actor's other devices
// and the rest of the household apply it. A module never builds JSON: every
// payload is a oneof case of realtimev1.Event.
//
// The Service publishes while its write's transaction is still open and
// commits only once the broker accepted the event; if the publish fails it
// rolls the write back and returns Unavailable (see the package doc).
func Example() {
	ctx := broker.WithOrigin(context.Background(), "alice-phone")
	b := broker.NewMemory(broker.MemoryConfig{})
	defer b.Close()
	emit := module.NewEmitter(b) // the server hands a module this in module.Env

	// Bob has the app open: his stream joined his household's room.
	sub, err := b.Subscribe(ctx, broker.SubscribeOptions{
		UserID: "bob",
		Rooms:  []room.Name{room.User("bob"), room.Household("home"), room.Broadcast},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Close()

	// Alice checked an item; the write is done but not yet committed. Tell
	// the others before committing.
	item := &shoppingv1.ShoppingItem{Id: shopping.NewItemID(), ListId: shopping.ListID("home"), Name: "Oat milk", Checked: true, Version: 2}
	ev := &realtimev1.Event{
		SenderUserId: "alice",
		Payload:      &realtimev1.Event_ItemUpdated{ItemUpdated: &shoppingv1.ItemUpdated{Item: item}},
	}
	if _, err := emit.ToOthers(ctx, "home", ev); err != nil {
		// Roll the write back and fail with Unavailable: nothing changed,
		// so the caller can retry.
		log.Fatalf("emit: %v", err)
	}
	// Published: commit the write now.

	<-sub.Ready()
	for _, m := range sub.Next(nil) {
		u := m.Event.GetItemUpdated().GetItem()
		fmt.Printf("bob sees %s change %q: checked=%v version=%d\n", m.Event.SenderUserId, u.Name, u.Checked, u.Version)
	}
	// Output:
	// bob sees alice change "Oat milk": checked=true version=2
}

// This example wires the Service as the server does and calls it the way
// the auth interceptor would: with the verified principal in the context.
// The household comes from the principal; the request names only the item.
func ExampleService_AddItem() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "shopping-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	store, err := shopping.OpenStore(ctx, filepath.Join(dir, "shopping.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	b := broker.NewMemory(broker.MemoryConfig{})
	defer b.Close()
	svc := shopping.NewService(store, module.NewEmitter(b), nil)

	sub, err := b.Subscribe(ctx, broker.SubscribeOptions{
		UserID: "bob",
		Rooms:  []room.Name{room.Household("home")},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Close()

	alice := auth.WithPrincipal(ctx, &auth.Principal{UserID: "alice", HouseholdID: "home"})
	res, err := svc.AddItem(alice, connect.NewRequest(&shoppingv1.AddItemRequest{Name: "Eggs", Quantity: 12}))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("alice added %q to %s\n", res.Msg.Item.Name, res.Msg.Item.ListId)

	<-sub.Ready()
	for _, m := range sub.Next(nil) {
		added := m.Event.GetItemAdded().GetItem()
		fmt.Printf("bob hears from %s: %q x%g\n", m.Event.SenderUserId, added.Name, added.Quantity)
	}
	// Output:
	// alice added "Eggs" to list_home
	// bob hears from alice: "Eggs" x12
}
