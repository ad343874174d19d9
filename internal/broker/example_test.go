package broker_test

import (
	"context"
	"fmt"

	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	shoppingv1 "github.com/honeydo/realtime/gen/honeydo/shopping/v1"
	"github.com/honeydo/realtime/internal/broker"
)

// A module emits to the household except the actor (Socket.io's toOthers);
// the household's other members receive it, the actor does not.
func ExampleEmitter_ToOthers() {
	ctx := context.Background()
	b := broker.NewMemory(broker.MemoryConfig{Epoch: "example"})
	defer b.Close()

	join := func(user string) *broker.Subscription {
		s, _ := b.Subscribe(ctx, broker.SubscribeOptions{
			UserID: user,
			Rooms:  []broker.Room{broker.UserRoom(user), broker.HouseholdRoom("home"), broker.BroadcastRoom},
		})
		return s
	}
	alice, bob := join("alice"), join("bob")
	defer alice.Close()
	defer bob.Close()

	emit := broker.NewEmitter(b)
	msg, _ := emit.ToOthers(ctx, "home", "alice", &realtimev1.Event{
		SenderUserId: "alice",
		Payload: &realtimev1.Event_ItemAdded{ItemAdded: &shoppingv1.ItemAdded{
			Item: &shoppingv1.ShoppingItem{Id: "itm_1", Name: "Oat milk"},
		}},
	})
	fmt.Println("cursor:", msg.Event.GetCursor())
	for _, m := range bob.Next(nil) {
		fmt.Println("bob got:", m.Event.GetItemAdded().GetItem().GetName(), "from", m.Event.GetSenderUserId())
	}
	fmt.Println("alice got:", len(alice.Next(nil)), "events")
	// Output:
	// cursor: example_1
	// bob got: Oat milk from alice
	// alice got: 0 events
}
