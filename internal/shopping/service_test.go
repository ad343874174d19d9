package shopping

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	shoppingv1 "github.com/honeydo/realtime/gen/honeydo/shopping/v1"
	systemv1 "github.com/honeydo/realtime/gen/honeydo/system/v1"
	"github.com/honeydo/realtime/internal/auth"
	"github.com/honeydo/realtime/internal/broker"
)

// testEnv is a Service over a real store and a real in-memory broker, with
// its log captured.
type testEnv struct {
	svc    *Service
	store  *Store
	broker *broker.Memory
	emit   *broker.Emitter
	logs   *syncBuffer
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	b := broker.NewMemory(broker.MemoryConfig{})
	t.Cleanup(func() { b.Close() })
	logs := &syncBuffer{}
	emit := broker.NewEmitter(b)
	store := newTestStore(t)
	return &testEnv{
		svc:    NewService(store, emit, slog.New(slog.NewTextHandler(logs, nil))),
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
		Rooms:  []broker.Room{broker.UserRoom(user), broker.HouseholdRoom(household), broker.BroadcastRoom},
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
// household) receives exactly the event carrying the stored item and sender
// alice, that alice's own stream does not (toOthers), and that carol in
// another household receives nothing.
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

			alice := e.subscribe(t, "alice", "home")
			bob := e.subscribe(t, "bob", "home")
			carol := e.subscribe(t, "carol", "other")

			want := tc.do(t, e, as("alice", "home"), existing)
			want.SenderUserId = "alice"

			got := e.received(t, bob)
			if len(got) != 1 {
				t.Fatalf("bob received %d events, want 1: %v", len(got), got)
			}
			// id, cursor and time are the broker's; compare the rest.
			if diff := cmpEvent(want, got[0]); diff != "" {
				t.Errorf("bob's event differs:\n%s", diff)
			}
			if got := e.received(t, alice); len(got) != 0 {
				t.Errorf("alice received her own event(s): %v", got)
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

// TestServiceEmitFailureStillSucceeds checks that a write whose event cannot
// be emitted still succeeds (it committed) and that the failure is logged.
func TestServiceEmitFailureStillSucceeds(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	e.broker.Close() // every Publish now fails with broker.ErrClosed

	alice := as("alice", "home")
	it := mustAddItem(t, e, alice, "Milk")
	if _, err := e.svc.UpdateItem(alice, connect.NewRequest(&shoppingv1.UpdateItemRequest{ItemId: it.Id, Checked: proto.Bool(true)})); err != nil {
		t.Fatalf("UpdateItem: %v", err)
	}
	items, err := e.store.List(context.Background(), "home")
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 || !items[0].Checked {
		t.Fatalf("the writes did not commit: %+v", items)
	}
	if _, err := e.svc.RemoveItem(alice, connect.NewRequest(&shoppingv1.RemoveItemRequest{ItemId: it.Id})); err != nil {
		t.Fatalf("RemoveItem: %v", err)
	}
	logs := e.logs.String()
	for _, want := range []string{"event=item_added", "event=item_updated", "event=item_removed", broker.ErrClosed.Error(), "household=home", "user=alice"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log does not mention %q:\n%s", want, logs)
		}
	}
}

// TestServiceEmitSurvivesCancel checks that a caller hanging up right after
// the commit does not swallow the event.
func TestServiceEmitSurvivesCancel(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	bob := e.subscribe(t, "bob", "home")
	ctx, cancel := context.WithCancel(as("alice", "home"))
	cancel()
	p, _ := auth.FromContext(ctx)
	e.svc.emitToOthers(ctx, p, &realtimev1.Event{Payload: &realtimev1.Event_ItemRemoved{
		ItemRemoved: &shoppingv1.ItemRemoved{ListId: "list_home", ItemId: NewItemID()},
	}})
	if got := e.received(t, bob); len(got) != 1 {
		t.Fatalf("bob received %d events, want 1; log:\n%s", len(got), e.logs.String())
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
