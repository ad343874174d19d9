package module_test

import (
	"context"
	"fmt"

	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	shoppingv1 "github.com/honeydo/realtime/gen/honeydo/shopping/v1"
	"github.com/honeydo/realtime/internal/auth"
	"github.com/honeydo/realtime/internal/broker"
	"github.com/honeydo/realtime/internal/module"
	"github.com/honeydo/realtime/internal/room"
)

// A module emits to the household but the acting client (Socket.io's
// toOthers): every stream of the household receives the event, Alice's own
// streams included, tagged with the origin of the call that caused it and
// naming her as sender; the client of that origin (Alice's phone) skips
// it, her laptop applies it.
func ExampleEmitter_ToOthers() {
	// The server's interceptors put the verified caller and the calling
	// client's Realtime-Origin header into the handler's context.
	ctx := auth.WithPrincipal(context.Background(), &auth.Principal{UserID: "alice", HouseholdID: "home"})
	ctx = broker.WithOrigin(ctx, "alice-phone")
	b := broker.NewMemory(broker.MemoryConfig{Epoch: "example"})
	defer b.Close()

	join := func(user string) *broker.Subscription {
		s, _ := b.Subscribe(ctx, broker.SubscribeOptions{
			UserID: user,
			Rooms:  []room.Name{room.User(user), room.Household("home"), room.Broadcast},
		})
		return s
	}
	alice, bob := join("alice"), join("bob")
	defer alice.Close()
	defer bob.Close()

	emit := module.NewEmitter(b) // the server hands a module this in module.Env
	sent, _ := emit.ToOthers(ctx, "home", &realtimev1.Event{
		Payload: &realtimev1.Event_ItemAdded{ItemAdded: &shoppingv1.ItemAdded{
			Item: &shoppingv1.ShoppingItem{Id: "itm_1", Name: "Oat milk"},
		}},
	})
	fmt.Println("cursor:", sent.Cursor)
	for _, m := range bob.Next(nil) {
		fmt.Println("bob got:", m.Event.GetItemAdded().GetItem().GetName(), "from", m.Event.GetSenderUserId())
	}
	for _, m := range alice.Next(nil) {
		fmt.Println("alice got:", m.Event.GetItemAdded().GetItem().GetName(), "from origin", m.Event.GetOrigin())
	}
	// Output:
	// cursor: example_1
	// bob got: Oat milk from alice
	// alice got: Oat milk from origin alice-phone
}
