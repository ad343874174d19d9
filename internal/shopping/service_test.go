package shopping

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	shoppingv1 "github.com/honeydo/realtime/gen/honeydo/shopping/v1"
	systemv1 "github.com/honeydo/realtime/gen/honeydo/system/v1"
	"github.com/honeydo/realtime/internal/auth"
	"github.com/honeydo/realtime/internal/broker"
	"github.com/honeydo/realtime/internal/module"
	"github.com/honeydo/realtime/internal/room"
	"github.com/honeydo/realtime/internal/testkit/syncbuf"
)

// testEnv is a Service over a real store and a real in-memory broker, with
// its log captured.
type testEnv struct {
	svc    *Service
	store  *Store
	broker *broker.Memory
	// emit publishes straight to broker (the tests' fences), bypassing any
	// wrapper the service publishes through.
	emit *module.Emitter
	logs *syncbuf.Buffer
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	return newTestEnvWith(t, nil)
}

// newTestEnvWith is newTestEnv with the service publishing through
// wrap(memory broker) when wrap is not nil.
func newTestEnvWith(t *testing.T, wrap func(broker.Broker) broker.Broker) *testEnv {
	t.Helper()
	b := broker.NewMemory(broker.MemoryConfig{})
	t.Cleanup(func() { b.Close() })
	logs := &syncbuf.Buffer{}
	emit := module.NewEmitter(b)
	svcEmit := module.NewEmitter(b)
	if wrap != nil {
		svcEmit = module.NewEmitter(wrap(b))
	}
	store := newTestStore(t)
	return &testEnv{
		svc:    NewService(store, svcEmit, slog.New(slog.NewTextHandler(logs, nil))),
		store:  store,
		broker: b,
		emit:   emit,
		logs:   logs,
	}
}

// as returns a context carrying the principal the auth interceptor would
// have verified for a member of household.
func as(user, household string) context.Context {
	return auth.WithPrincipal(context.Background(), &auth.Principal{
		UserID:      user,
		SessionID:   "sess_" + user,
		HouseholdID: household,
	})
}

// subscribe joins the rooms a stream of user in household would join.
func (e *testEnv) subscribe(t *testing.T, user, household string) *broker.Subscription {
	t.Helper()
	sub, err := e.broker.Subscribe(context.Background(), broker.SubscribeOptions{
		UserID: user,
		Rooms:  []room.Name{room.User(user), room.Household(household), room.Broadcast},
	})
	if err != nil {
		t.Fatalf("Subscribe(%s): %v", user, err)
	}
	t.Cleanup(sub.Close)
	return sub
}

// fenceMessage is the notification text that marks the end of a test's
// events.
const fenceMessage = "fence"

// received broadcasts a fence and returns every event sub received before
// it. The fence makes "received nothing" a positive observation instead of
// a sleep: events of one room arrive in publish order, so everything
// emitted before the fence is in by the time the fence is.
func (e *testEnv) received(t *testing.T, sub *broker.Subscription) []*realtimev1.Event {
	t.Helper()
	fence := &realtimev1.Event{Payload: &realtimev1.Event_Notification{
		Notification: &systemv1.Notification{Message: fenceMessage},
	}}
	if _, err := e.emit.Broadcast(context.Background(), fence); err != nil {
		t.Fatalf("broadcast fence: %v", err)
	}
	var got []*realtimev1.Event
	timeout := time.After(5 * time.Second)
	for {
		select {
		case <-sub.Ready():
		case <-timeout:
			t.Fatalf("%s: fence not received within 5s; got %d events before", sub.UserID, len(got))
		}
		for _, m := range sub.Next(nil) {
			if m.Event.GetNotification().GetMessage() == fenceMessage {
				return got
			}
			got = append(got, m.Event)
		}
		select {
		case <-sub.Done():
			t.Fatalf("%s: subscription ended: %v", sub.UserID, sub.Err())
		default:
		}
	}
}

func mustAddItem(t *testing.T, e *testEnv, ctx context.Context, name string) *shoppingv1.ShoppingItem {
	t.Helper()
	res, err := e.svc.AddItem(ctx, connect.NewRequest(&shoppingv1.AddItemRequest{Name: name}))
	if err != nil {
		t.Fatalf("AddItem(%q): %v", name, err)
	}
	return res.Msg.Item
}

// TestServiceEmitsToOthers checks, for each mutation, that bob (same
// household) and alice's other device receive exactly the event carrying
// the stored item, sender alice and the origin of alice's call (the client
// of that origin skips it), and that carol in another household receives
// nothing.
func TestServiceEmitsToOthers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// do performs the mutation as alice on a list that holds existing,
		// and returns the event bob must receive.
		do func(t *testing.T, e *testEnv, alice context.Context, existing *shoppingv1.ShoppingItem) *realtimev1.Event
	}{
		{"AddItem", func(t *testing.T, e *testEnv, alice context.Context, _ *shoppingv1.ShoppingItem) *realtimev1.Event {
			res, err := e.svc.AddItem(alice, connect.NewRequest(&shoppingv1.AddItemRequest{Name: " Oat milk ", Quantity: 2, Unit: "l"}))
			if err != nil {
				t.Fatalf("AddItem: %v", err)
			}
			it := res.Msg.Item
			if it.Name != "Oat milk" || it.Quantity != 2 || it.Unit != "l" || it.AddedByUserId != "alice" ||
				it.ListId != "list_home" || it.Version != 1 || it.CreateTime == nil {
				t.Fatalf("AddItem returned %v", it)
			}
			return &realtimev1.Event{Payload: &realtimev1.Event_ItemAdded{ItemAdded: &shoppingv1.ItemAdded{Item: it}}}
		}},
		{"UpdateItem", func(t *testing.T, e *testEnv, alice context.Context, existing *shoppingv1.ShoppingItem) *realtimev1.Event {
			res, err := e.svc.UpdateItem(alice, connect.NewRequest(&shoppingv1.UpdateItemRequest{
				ItemId: existing.Id, Checked: proto.Bool(true),
			}))
			if err != nil {
				t.Fatalf("UpdateItem: %v", err)
			}
			it := res.Msg.Item
			if !it.Checked || it.Version != 2 || it.Name != existing.Name || it.AddedByUserId != "bob" {
				t.Fatalf("UpdateItem returned %v", it)
			}
			return &realtimev1.Event{Payload: &realtimev1.Event_ItemUpdated{ItemUpdated: &shoppingv1.ItemUpdated{Item: it}}}
		}},
		{"RemoveItem", func(t *testing.T, e *testEnv, alice context.Context, existing *shoppingv1.ShoppingItem) *realtimev1.Event {
			if _, err := e.svc.RemoveItem(alice, connect.NewRequest(&shoppingv1.RemoveItemRequest{ItemId: existing.Id})); err != nil {
				t.Fatalf("RemoveItem: %v", err)
			}
			return &realtimev1.Event{Payload: &realtimev1.Event_ItemRemoved{ItemRemoved: &shoppingv1.ItemRemoved{
				ListId: "list_home", ItemId: existing.Id,
			}}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t)
			// bob added the existing item, so the event for it is not
			// mistaken for alice's.
			existing := mustAddItem(t, e, as("bob", "home"), "Bread")

			aliceLaptop := e.subscribe(t, "alice", "home")
			bob := e.subscribe(t, "bob", "home")
			carol := e.subscribe(t, "carol", "other")

			want := tc.do(t, e, broker.WithOrigin(as("alice", "home"), "alice-phone"), existing)
			want.SenderUserId = "alice"
			want.Origin = "alice-phone"

			for name, sub := range map[string]*broker.Subscription{"bob": bob, "alice's laptop": aliceLaptop} {
				got := e.received(t, sub)
				if len(got) != 1 {
					t.Fatalf("%s received %d events, want 1: %v", name, len(got), got)
				}
				// id, cursor and time are the broker's; compare the rest.
				if diff := cmpEvent(want, got[0]); diff != "" {
					t.Errorf("%s's event differs:\n%s", name, diff)
				}
			}
			if got := e.received(t, carol); len(got) != 0 {
				t.Errorf("carol in another household received: %v", got)
			}
		})
	}
}

// cmpEvent compares the fields a module sets; id, cursor and time are
// assigned by the broker.
func cmpEvent(want, got *realtimev1.Event) string {
	got = proto.CloneOf(got)
	got.Id, got.Cursor, got.Time = "", "", nil
	if proto.Equal(want, got) {
		return ""
	}
	return fmt.Sprintf("want %v\n got %v", want, got)
}

// TestServiceErrors checks the code of each failure and that a failed call
// emits nothing.
func TestServiceErrors(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	theirs := mustAddItem(t, e, as("carol", "other"), "Coffee")
	mine := mustAddItem(t, e, as("alice", "home"), "Tea")
	bob := e.subscribe(t, "bob", "home")
	carol := e.subscribe(t, "carol", "other")

	alice := as("alice", "home")
	service := auth.WithPrincipal(context.Background(), &auth.Principal{UserID: "billing", Service: true})
	noHousehold := auth.WithPrincipal(context.Background(), &auth.Principal{UserID: "dave"})

	add := func(ctx context.Context, name string) error {
		_, err := e.svc.AddItem(ctx, connect.NewRequest(&shoppingv1.AddItemRequest{Name: name}))
		return err
	}
	update := func(ctx context.Context, req *shoppingv1.UpdateItemRequest) error {
		_, err := e.svc.UpdateItem(ctx, connect.NewRequest(req))
		return err
	}
	remove := func(ctx context.Context, id string) error {
		_, err := e.svc.RemoveItem(ctx, connect.NewRequest(&shoppingv1.RemoveItemRequest{ItemId: id}))
		return err
	}
	list := func(ctx context.Context) error {
		_, err := e.svc.ListItems(ctx, connect.NewRequest(&shoppingv1.ListItemsRequest{}))
		return err
	}

	for _, tc := range []struct {
		name string
		call func() error
		want connect.Code
	}{
		{"list without principal", func() error { return list(context.Background()) }, connect.CodeUnauthenticated},
		{"add without principal", func() error { return add(context.Background(), "Milk") }, connect.CodeUnauthenticated},
		{"update without principal", func() error {
			return update(context.Background(), &shoppingv1.UpdateItemRequest{ItemId: mine.Id, Checked: proto.Bool(true)})
		}, connect.CodeUnauthenticated},
		{"remove without principal", func() error { return remove(context.Background(), mine.Id) }, connect.CodeUnauthenticated},
		{"list as service", func() error { return list(service) }, connect.CodePermissionDenied},
		{"add as service", func() error { return add(service, "Milk") }, connect.CodePermissionDenied},
		{"remove as service", func() error { return remove(service, mine.Id) }, connect.CodePermissionDenied},
		{"add without household", func() error { return add(noHousehold, "Milk") }, connect.CodePermissionDenied},
		{"add empty name", func() error { return add(alice, "") }, connect.CodeInvalidArgument},
		{"add blank name", func() error { return add(alice, "   ") }, connect.CodeInvalidArgument},
		{"add long name", func() error { return add(alice, strings.Repeat("x", 201)) }, connect.CodeInvalidArgument},
		{"add negative quantity", func() error {
			_, err := e.svc.AddItem(alice, connect.NewRequest(&shoppingv1.AddItemRequest{Name: "Milk", Quantity: -1}))
			return err
		}, connect.CodeInvalidArgument},
		{"update sets nothing", func() error { return update(alice, &shoppingv1.UpdateItemRequest{ItemId: mine.Id}) }, connect.CodeInvalidArgument},
		{"update malformed id", func() error {
			return update(alice, &shoppingv1.UpdateItemRequest{ItemId: "nope", Checked: proto.Bool(true)})
		}, connect.CodeInvalidArgument},
		{"update blank name", func() error {
			return update(alice, &shoppingv1.UpdateItemRequest{ItemId: mine.Id, Name: proto.String(" ")})
		}, connect.CodeInvalidArgument},
		{"update other household's item", func() error {
			return update(alice, &shoppingv1.UpdateItemRequest{ItemId: theirs.Id, Checked: proto.Bool(true)})
		}, connect.CodeNotFound},
		{"update unknown item", func() error {
			return update(alice, &shoppingv1.UpdateItemRequest{ItemId: NewItemID(), Checked: proto.Bool(true)})
		}, connect.CodeNotFound},
		{"remove other household's item", func() error { return remove(alice, theirs.Id) }, connect.CodeNotFound},
		{"remove unknown item", func() error { return remove(alice, NewItemID()) }, connect.CodeNotFound},
		{"remove empty id", func() error { return remove(alice, "") }, connect.CodeInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if got := connect.CodeOf(err); got != tc.want {
				t.Fatalf("code = %v (%v), want %v", got, err, tc.want)
			}
		})
	}

	if got := e.received(t, bob); len(got) != 0 {
		t.Errorf("failed calls emitted events to bob: %v", got)
	}
	if got := e.received(t, carol); len(got) != 0 {
		t.Errorf("failed calls emitted events to carol: %v", got)
	}
	// carol's item is untouched.
	res, err := e.svc.ListItems(as("carol", "other"), connect.NewRequest(&shoppingv1.ListItemsRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Msg.Items) != 1 || !proto.Equal(res.Msg.Items[0], theirs) {
		t.Errorf("carol's list = %v, want [%v]", res.Msg.Items, theirs)
	}
}

// TestServiceListItems checks that the household comes from the principal:
// each caller sees its own household's list, oldest first.
func TestServiceListItems(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	var home []*shoppingv1.ShoppingItem
	for _, name := range []string{"Milk", "Eggs", "Bread"} {
		home = append(home, mustAddItem(t, e, as("alice", "home"), name))
	}
	other := mustAddItem(t, e, as("carol", "other"), "Coffee")

	for _, tc := range []struct {
		caller     context.Context
		wantListID string
		want       []*shoppingv1.ShoppingItem
	}{
		{as("bob", "home"), "list_home", home},
		{as("carol", "other"), "list_other", []*shoppingv1.ShoppingItem{other}},
		{as("erin", "empty"), "list_empty", nil},
	} {
		p, _ := auth.FromContext(tc.caller)
		t.Run(p.UserID, func(t *testing.T) {
			res, err := e.svc.ListItems(tc.caller, connect.NewRequest(&shoppingv1.ListItemsRequest{}))
			if err != nil {
				t.Fatal(err)
			}
			want := &shoppingv1.ListItemsResponse{ListId: tc.wantListID, Items: tc.want}
			if !proto.Equal(res.Msg, want) {
				t.Errorf("ListItems = %v, want %v", res.Msg, want)
			}
		})
	}
}

// list returns the household's list as a member sees it.
func (e *testEnv) list(t *testing.T, household string) []*shoppingv1.ShoppingItem {
	t.Helper()
	res, err := e.svc.ListItems(as("reader", household), connect.NewRequest(&shoppingv1.ListItemsRequest{}))
	if err != nil {
		t.Fatalf("ListItems(%s): %v", household, err)
	}
	return res.Msg.Items
}

// sameItems compares two lists including versions and times.
func sameItems(a, b []*shoppingv1.ShoppingItem) bool {
	return proto.Equal(&shoppingv1.ListItemsResponse{Items: a}, &shoppingv1.ListItemsResponse{Items: b})
}

// failingBroker publishes through the real broker unless fail is set, in
// which case Publish fails with that error without reaching the broker; hook,
// when set, runs at the start of every Publish.
type failingBroker struct {
	broker.Broker
	fail atomic.Pointer[error]
	hook func()
}

func (f *failingBroker) Publish(ctx context.Context, target broker.Target, ev *realtimev1.Event) (*broker.Message, error) {
	if f.hook != nil {
		f.hook()
	}
	if err := f.fail.Load(); err != nil {
		return nil, *err
	}
	return f.Broker.Publish(ctx, target, ev)
}

// TestServicePublishFailureChangesNothing checks that with the broker
// closed, or unreachable, every mutation fails with Unavailable and leaves
// the store exactly as it was (items, versions, times), that nobody hears
// of it, and that the refusal is logged; and that once the broker is back
// the same calls succeed and are heard once.
func TestServicePublishFailureChangesNothing(t *testing.T) {
	t.Parallel()
	unavailable := fmt.Errorf("%w: not connected to NATS (RECONNECTING)", broker.ErrUnavailable)
	for _, tc := range []struct {
		name    string
		breakIt func(e *testEnv, f *failingBroker)
		heal    func(f *failingBroker) // nil: cannot heal
		want    error
	}{
		{"closed", func(e *testEnv, _ *failingBroker) { e.broker.Close() }, nil, broker.ErrClosed},
		{"unavailable", func(_ *testEnv, f *failingBroker) { f.fail.Store(&unavailable) }, func(f *failingBroker) { f.fail.Store(nil) }, broker.ErrUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := &failingBroker{}
			e := newTestEnvWith(t, func(b broker.Broker) broker.Broker { f.Broker = b; return f })
			alice := as("alice", "home")
			milk := mustAddItem(t, e, alice, "Milk")
			mustAddItem(t, e, as("carol", "other"), "Coffee")
			home, other := e.list(t, "home"), e.list(t, "other")
			bob := e.subscribe(t, "bob", "home")

			tc.breakIt(e, f)
			calls := []struct {
				name string
				call func() error
			}{
				{"AddItem", func() error {
					_, err := e.svc.AddItem(alice, connect.NewRequest(&shoppingv1.AddItemRequest{Name: "Eggs"}))
					return err
				}},
				{"UpdateItem", func() error {
					_, err := e.svc.UpdateItem(alice, connect.NewRequest(&shoppingv1.UpdateItemRequest{
						ItemId: milk.Id, Checked: proto.Bool(true), Name: proto.String("Oat milk"),
					}))
					return err
				}},
				{"RemoveItem", func() error {
					_, err := e.svc.RemoveItem(alice, connect.NewRequest(&shoppingv1.RemoveItemRequest{ItemId: milk.Id}))
					return err
				}},
			}
			for _, c := range calls {
				err := c.call()
				if connect.CodeOf(err) != connect.CodeUnavailable {
					t.Fatalf("%s: %v, want Unavailable", c.name, err)
				}
				if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), "nothing was changed; retry") {
					t.Errorf("%s: error %q does not wrap %v or say that nothing changed", c.name, err, tc.want)
				}
				if got := e.list(t, "home"); !sameItems(got, home) {
					t.Fatalf("%s changed the list:\n got %v\nwant %v", c.name, got, home)
				}
			}
			if got := e.list(t, "other"); !sameItems(got, other) {
				t.Errorf("other household's list changed: %v", got)
			}
			logs := e.logs.String()
			for _, want := range []string{"level=WARN", "rolled back", "event=item_added", "event=item_updated", "event=item_removed", tc.want.Error(), "household=home", "user=alice"} {
				if !strings.Contains(logs, want) {
					t.Errorf("log does not mention %q:\n%s", want, logs)
				}
			}
			if strings.Contains(logs, "level=ERROR") {
				t.Errorf("a refused publish was logged as an error:\n%s", logs)
			}
			if tc.heal == nil {
				return
			}
			if got := e.received(t, bob); len(got) != 0 {
				t.Fatalf("bob heard of refused changes: %v", got)
			}

			tc.heal(f)
			for _, c := range calls {
				if err := c.call(); err != nil {
					t.Fatalf("%s after the broker is back: %v", c.name, err)
				}
			}
			got := e.received(t, bob)
			if len(got) != 3 || got[0].GetItemAdded() == nil || got[1].GetItemUpdated().GetItem().GetVersion() != 2 || got[2].GetItemRemoved() == nil {
				t.Fatalf("bob received %v, want added, updated (version 2), removed", got)
			}
			if items := e.list(t, "home"); len(items) != 1 || items[0].Name != "Eggs" {
				t.Fatalf("list after the retries = %v, want [Eggs]", items)
			}
		})
	}
}

// TestServiceCommitFailsAfterPublish makes the commit itself fail after the
// event went out (a deferred foreign key, violated by a trigger, fails the
// COMMIT as a full disk would): the call fails with Internal, the error is
// logged with the id of the event that went out, nothing is stored, and the
// store keeps working.
func TestServiceCommitFailsAfterPublish(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	ctx := context.Background()
	if _, err := e.store.db.ExecContext(ctx, `
		CREATE TABLE fail_commit (list_id TEXT REFERENCES lists (id) DEFERRABLE INITIALLY DEFERRED);
		CREATE TRIGGER fail_commit AFTER INSERT ON items BEGIN INSERT INTO fail_commit VALUES ('no such list'); END;`); err != nil {
		t.Fatal(err)
	}
	bob := e.subscribe(t, "bob", "home")

	_, err := e.svc.AddItem(as("alice", "home"), connect.NewRequest(&shoppingv1.AddItemRequest{Name: "Milk"}))
	if connect.CodeOf(err) != connect.CodeInternal || strings.Contains(err.Error(), "FOREIGN KEY") {
		t.Fatalf("AddItem = %v, want Internal without storage details", err)
	}
	got := e.received(t, bob)
	if len(got) != 1 || got[0].GetItemAdded() == nil {
		t.Fatalf("bob received %v, want the one ItemAdded that went out", got)
	}
	logs := e.logs.String()
	for _, want := range []string{"level=ERROR", "did not persist", "event_id=" + got[0].Id, "event=item_added", "FOREIGN KEY"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log does not mention %q:\n%s", want, logs)
		}
	}
	if items := e.list(t, "home"); len(items) != 0 {
		t.Fatalf("the failed commit left items: %v", items)
	}

	// The failed COMMIT left no transaction open on a pooled connection:
	// the next writes succeed.
	if _, err := e.store.db.ExecContext(ctx, `DROP TRIGGER fail_commit`); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		mustAddItem(t, e, as("alice", "home"), "Eggs")
	}
	if items := e.list(t, "home"); len(items) != 4 {
		t.Fatalf("list = %v, want 4 items", items)
	}
}

// TestServiceCallerHangsUp checks that a caller gone before the call
// changes nothing, and that a caller hanging up while the event is being
// published does not undo the write that the event announces.
func TestServiceCallerHangsUp(t *testing.T) {
	t.Parallel()
	f := &failingBroker{}
	e := newTestEnvWith(t, func(b broker.Broker) broker.Broker { f.Broker = b; return f })
	bob := e.subscribe(t, "bob", "home")

	gone, cancel := context.WithCancel(as("alice", "home"))
	cancel()
	if _, err := e.svc.AddItem(gone, connect.NewRequest(&shoppingv1.AddItemRequest{Name: "Milk"})); connect.CodeOf(err) != connect.CodeCanceled {
		t.Fatalf("AddItem from a caller already gone = %v, want Canceled", err)
	}

	ctx, cancel := context.WithCancel(as("alice", "home"))
	f.hook = cancel // the caller hangs up while the event is being published
	if _, err := e.svc.AddItem(ctx, connect.NewRequest(&shoppingv1.AddItemRequest{Name: "Eggs"})); err != nil {
		t.Fatalf("AddItem: %v", err)
	}
	items := e.list(t, "home")
	if len(items) != 1 || items[0].Name != "Eggs" {
		t.Fatalf("list = %v, want [Eggs]", items)
	}
	got := e.received(t, bob)
	if len(got) != 1 || got[0].GetItemAdded().GetItem().GetId() != items[0].Id {
		t.Fatalf("bob received %v, want the ItemAdded of %s", got, items[0].Id)
	}
}

// TestServiceEventsInCommitOrder checks that racing updates of one item are
// heard in the order they were stored: versions 2, 3, ... with no
// inversion, because each publish happens under the write lock.
func TestServiceEventsInCommitOrder(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	it := mustAddItem(t, e, as("alice", "home"), "Milk")
	bob := e.subscribe(t, "bob", "home")
	const n = 30
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, err := e.svc.UpdateItem(as("alice", "home"), connect.NewRequest(&shoppingv1.UpdateItemRequest{
				ItemId: it.Id, Quantity: proto.Float64(float64(i + 1)),
			}))
			if err != nil {
				t.Errorf("UpdateItem: %v", err)
			}
		})
	}
	wg.Wait()
	got := e.received(t, bob)
	if len(got) != n {
		t.Fatalf("bob received %d events, want %d", len(got), n)
	}
	for i, ev := range got {
		if v := ev.GetItemUpdated().GetItem().GetVersion(); v != int64(i+2) {
			t.Fatalf("event %d carries version %d, want %d", i, v, i+2)
		}
	}
	if last := e.list(t, "home")[0]; !proto.Equal(last, got[n-1].GetItemUpdated().GetItem()) {
		t.Errorf("stored item %v differs from the last event's %v", last, got[n-1].GetItemUpdated().GetItem())
	}
}

// TestServiceBusyIsUnavailable checks that a write that cannot get the
// database's write lock within the busy timeout (another write holds it,
// e.g. behind a stalled publish) fails with Unavailable and changes
// nothing. It waits out the 5 s busy timeout.
func TestServiceBusyIsUnavailable(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the 5 s busy timeout")
	}
	t.Parallel()
	e := newTestEnv(t)
	ctx := context.Background()
	conn, err := e.store.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil) // BEGIN IMMEDIATE: takes the write lock
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()

	start := time.Now()
	_, err = e.svc.AddItem(as("alice", "home"), connect.NewRequest(&shoppingv1.AddItemRequest{Name: "Milk"}))
	if connect.CodeOf(err) != connect.CodeUnavailable || !strings.Contains(err.Error(), "busy") {
		t.Fatalf("AddItem while the database is locked = %v, want Unavailable (busy)", err)
	}
	if d := time.Since(start); d < busyTimeout/2 {
		t.Errorf("AddItem gave up after %v, before the busy timeout", d)
	}
	tx.Rollback()
	if items := e.list(t, "home"); len(items) != 0 {
		t.Fatalf("list = %v, want empty", items)
	}
}

func TestToConnectError(t *testing.T) {
	t.Parallel()
	passthrough := connect.NewError(connect.CodePermissionDenied, errors.New("no"))
	for _, tc := range []struct {
		name    string
		err     error
		want    connect.Code
		wantMsg string // substring of the Connect error's message
		hidden  string // must not appear in the message
	}{
		{"invalid", fmt.Errorf("%w: name must not be empty", ErrInvalid), connect.CodeInvalidArgument, "name must not be empty", ""},
		{"invalid wrapped twice", fmt.Errorf("add: %w", fmt.Errorf("%w: unit too long", ErrInvalid)), connect.CodeInvalidArgument, "unit too long", ""},
		{"not found", fmt.Errorf("%w: item itm_x", ErrNotFound), connect.CodeNotFound, "item itm_x", ""},
		{"list full", fmt.Errorf("%w: the list already holds 5 items", ErrListFull), connect.CodeFailedPrecondition, "already holds 5 items", ""},
		{"canceled", fmt.Errorf("shopping: list items: %w", context.Canceled), connect.CodeCanceled, "canceled", ""},
		{"deadline", fmt.Errorf("shopping: add item: %w", context.DeadlineExceeded), connect.CodeDeadlineExceeded, "deadline", ""},
		{"connect error kept", passthrough, connect.CodePermissionDenied, "no", ""},
		{"storage failure", errors.New("shopping: add item: disk I/O error at /var/lib/x.db"), connect.CodeInternal, "internal error", "/var/lib"},
		{"bare sentinel-like text", errors.New("shopping: invalid input"), connect.CodeInternal, "internal error", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := toConnectError(tc.err)
			if got.Code() != tc.want {
				t.Errorf("code = %v, want %v", got.Code(), tc.want)
			}
			if !strings.Contains(got.Message(), tc.wantMsg) {
				t.Errorf("message %q does not contain %q", got.Message(), tc.wantMsg)
			}
			if tc.hidden != "" && strings.Contains(got.Message(), tc.hidden) {
				t.Errorf("message %q leaks %q", got.Message(), tc.hidden)
			}
		})
	}
}

// TestServiceConcurrentAdds checks that parallel adds from the members of
// one household each reach the other member exactly once.
func TestServiceConcurrentAdds(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	bob := e.subscribe(t, "bob", "home")
	const n = 40
	var wg sync.WaitGroup
	ids := make(chan string, n)
	for i := range n {
		wg.Go(func() {
			res, err := e.svc.AddItem(as("alice", "home"), connect.NewRequest(&shoppingv1.AddItemRequest{Name: fmt.Sprint("item ", i)}))
			if err != nil {
				t.Errorf("AddItem: %v", err)
				return
			}
			ids <- res.Msg.Item.Id
		})
	}
	wg.Wait()
	close(ids)
	want := make(map[string]bool)
	for id := range ids {
		want[id] = true
	}
	got := e.received(t, bob)
	if len(got) != n {
		t.Fatalf("bob received %d events, want %d", len(got), n)
	}
	for _, ev := range got {
		id := ev.GetItemAdded().GetItem().GetId()
		if !want[id] {
			t.Errorf("unexpected or duplicate event for %q", id)
		}
		delete(want, id)
	}
}
