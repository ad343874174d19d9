package shopping_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/honeydo/realtime/client"
	shoppingv1 "github.com/honeydo/realtime/gen/honeydo/shopping/v1"
	"github.com/honeydo/realtime/gen/honeydo/shopping/v1/shoppingv1connect"
	"github.com/honeydo/realtime/internal/module"
	"github.com/honeydo/realtime/internal/server"
	"github.com/honeydo/realtime/internal/shopping"
	"github.com/honeydo/realtime/internal/testkit"
	"github.com/honeydo/realtime/internal/testkit/poll"
)

// The tests in this file drive ShoppingService on a real server over
// loopback with the generated Go client, over Connect (HTTP/1.1) unless
// they say gRPC (h2c).

func shoppingClient(t *testing.T, srv *testkit.Server, user, household string, opts ...connect.ClientOption) shoppingv1connect.ShoppingServiceClient {
	t.Helper()
	tok := srv.Token(t, user, household, 10*time.Minute)
	h2c := len(opts) > 0 // the gRPC clients below
	return shoppingv1connect.NewShoppingServiceClient(testkit.HTTPClient(t, h2c), srv.URL,
		append([]connect.ClientOption{client.BearerToken(tok)}, opts...)...)
}

func wantError(t *testing.T, err error, code connect.Code, msg string) {
	t.Helper()
	if connect.CodeOf(err) != code || !strings.Contains(err.Error(), msg) {
		t.Fatalf("error = %v (%v), want %v containing %q", err, connect.CodeOf(err), code, msg)
	}
}

// addMany adds n items named prefix+i through c with a few concurrent
// callers and returns their ids.
func addMany(t *testing.T, c shoppingv1connect.ShoppingServiceClient, prefix string, n int) []string {
	t.Helper()
	ids := make([]string, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				res, err := c.AddItem(context.Background(), connect.NewRequest(&shoppingv1.AddItemRequest{Name: fmt.Sprint(prefix, i)}))
				if err != nil {
					errs <- err
					return
				}
				ids[i] = res.Msg.GetItem().GetId()
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatalf("AddItem: %v", err)
	}
	return ids
}

// readPages follows next_page_token with pageSize, calling between after
// every page but the last, and returns the ids read and the pages.
func readPages(t *testing.T, c shoppingv1connect.ShoppingServiceClient, pageSize int32, between func()) (ids []string, pages []*shoppingv1.ListItemsResponse) {
	t.Helper()
	token := ""
	for {
		res, err := c.ListItems(context.Background(), connect.NewRequest(&shoppingv1.ListItemsRequest{PageSize: pageSize, PageToken: token}))
		if err != nil {
			t.Fatalf("ListItems, page %d: %v", len(pages)+1, err)
		}
		pages = append(pages, res.Msg)
		for _, it := range res.Msg.GetItems() {
			ids = append(ids, it.GetId())
		}
		if token = res.Msg.GetNextPageToken(); token == "" {
			return ids, pages
		}
		if len(pages) > 1000 {
			t.Fatal("more than 1000 pages: the tokens do not advance")
		}
		if between != nil {
			between()
		}
	}
}

// TestListItemsPagesWithConcurrentInserts reads a list of 1,050 items page
// by page over RPC while Bob keeps adding items and renaming old ones, and
// makes sure at least one add lands between every two pages: every item
// that was there before is read exactly once, in order, and the new items
// that were read follow them in the order they were added.
func TestListItemsPagesWithConcurrentInserts(t *testing.T) {
	t.Parallel()
	srv := testkit.StartServer(t)
	alice := shoppingClient(t, srv, "alice", "home")
	bob := shoppingClient(t, srv, "bob", "home")
	const existing = 1050
	added := addMany(t, alice, "before ", existing)

	// The list as it stands, read without concurrent writes.
	before, pages := readPages(t, alice, shopping.MaxPageSize, nil)
	if len(before) != existing || len(pages) != 3 {
		t.Fatalf("read %d items in %d pages of %d, want %d in 3", len(before), len(pages), shopping.MaxPageSize, existing)
	}
	if fmt.Sprint(sorted(before)) != fmt.Sprint(sorted(added)) {
		t.Fatal("the pages do not hold the items added")
	}
	full := pages[0]
	def, err := alice.ListItems(context.Background(), connect.NewRequest(&shoppingv1.ListItemsRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	json, _ := protojson.Marshal(full)
	t.Logf("a full page of %d items: %d bytes in protobuf, %d in JSON; the default page of %d: %d bytes in protobuf",
		len(full.GetItems()), proto.Size(full), len(json), len(def.Msg.GetItems()), proto.Size(def.Msg))

	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var during []string
	var wg sync.WaitGroup
	// stop ends the writers between calls, so that every add the server
	// made is in during: canceling one in flight could leave out an item
	// that the last page already holds. ctx is canceled only when the test
	// ends, also when it fails half-way, before the server stops.
	stop := make(chan struct{})
	var stopOnce sync.Once
	stopWriters := func() {
		stopOnce.Do(func() { close(stop) })
		wg.Wait()
	}
	stopped := func() bool {
		select {
		case <-stop:
			return true
		default:
			return ctx.Err() != nil
		}
	}
	t.Cleanup(func() {
		cancel()
		stopWriters()
	})
	wg.Go(func() {
		for i := 0; !stopped(); i++ {
			res, err := bob.AddItem(ctx, connect.NewRequest(&shoppingv1.AddItemRequest{Name: fmt.Sprint("during ", i)}))
			if err != nil {
				if ctx.Err() == nil {
					t.Errorf("concurrent AddItem: %v", err)
				}
				return
			}
			mu.Lock()
			during = append(during, res.Msg.GetItem().GetId())
			mu.Unlock()
		}
	})
	wg.Go(func() {
		for i := 0; !stopped(); i++ {
			name := fmt.Sprint("renamed ", i)
			_, err := bob.UpdateItem(ctx, connect.NewRequest(&shoppingv1.UpdateItemRequest{ItemId: before[(i*37)%existing], Name: &name}))
			if err != nil && ctx.Err() == nil {
				t.Errorf("concurrent UpdateItem: %v", err)
				return
			}
		}
	})
	addedSoFar := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(during)
	}
	ids, pages := readPages(t, alice, 100, func() {
		n := addedSoFar()
		poll.Eventually(t, 30*time.Second, time.Millisecond, func() error {
			if addedSoFar() == n {
				return errors.New("no item added since the last page")
			}
			return nil
		})
	})
	stopWriters()
	if len(pages) < existing/100 {
		t.Fatalf("read %d pages of 100, want at least %d", len(pages), existing/100)
	}

	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Fatalf("item %s read twice", id)
		}
		seen[id] = true
	}
	if len(ids) < existing || fmt.Sprint(ids[:existing]) != fmt.Sprint(before) {
		t.Fatalf("the %d items that were there before were not read exactly once, in order (read %d)", existing, len(ids))
	}
	rest := ids[existing:]
	if len(rest) < len(pages)-1 || len(rest) > len(during) || fmt.Sprint(rest) != fmt.Sprint(during[:len(rest)]) {
		t.Fatalf("%d new items read, of %d added while %d pages were read: not the first ones in order", len(rest), len(during), len(pages))
	}
	t.Logf("read %d pages: the %d items that were there, then %d of the %d added meanwhile", len(pages), existing, len(rest), len(during))
}

func sorted(ids []string) []string {
	s := slices.Clone(ids)
	slices.Sort(s)
	return s
}

// TestListItemsWithoutPageSize is what a client from before paging sees:
// a bounded first page and a token for the rest.
func TestListItemsWithoutPageSize(t *testing.T) {
	t.Parallel()
	srv := testkit.StartServer(t)
	alice := shoppingClient(t, srv, "alice", "home")
	addMany(t, alice, "item ", shopping.DefaultPageSize+1)
	res, err := alice.ListItems(context.Background(), connect.NewRequest(&shoppingv1.ListItemsRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Msg.GetItems()) != shopping.DefaultPageSize || res.Msg.GetNextPageToken() == "" || res.Msg.GetListId() != "list_home" {
		t.Fatalf("ListItems{} = %d items, token %q, list %q; want %d, a token, list_home",
			len(res.Msg.GetItems()), res.Msg.GetNextPageToken(), res.Msg.GetListId(), shopping.DefaultPageSize)
	}
	last, err := alice.ListItems(context.Background(), connect.NewRequest(&shoppingv1.ListItemsRequest{PageToken: res.Msg.GetNextPageToken()}))
	if err != nil {
		t.Fatal(err)
	}
	if len(last.Msg.GetItems()) != 1 || last.Msg.GetNextPageToken() != "" {
		t.Fatalf("second page = %d items, token %q; want 1 and none", len(last.Msg.GetItems()), last.Msg.GetNextPageToken())
	}
}

// TestListItemsBadPageRequest: a malformed, tampered or foreign page token,
// and a negative page size, are INVALID_ARGUMENT with a message that says
// which field, over Connect and gRPC.
func TestListItemsBadPageRequest(t *testing.T) {
	t.Parallel()
	srv := testkit.StartServer(t)
	alice := shoppingClient(t, srv, "alice", "home")
	addMany(t, alice, "item ", 3)
	addMany(t, shoppingClient(t, srv, "carol", "other"), "item ", 3)
	first, err := alice.ListItems(context.Background(), connect.NewRequest(&shoppingv1.ListItemsRequest{PageSize: 1}))
	if err != nil {
		t.Fatal(err)
	}
	token := first.Msg.GetNextPageToken()
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		t.Fatalf("token %q is not unpadded base64url: %v", token, err)
	}
	raw[len(raw)/2] ^= 0x40
	tampered := base64.RawURLEncoding.EncodeToString(raw)

	for _, kind := range []struct {
		name string
		opts []connect.ClientOption
	}{{"connect", nil}, {"grpc", []connect.ClientOption{connect.WithGRPC()}}} {
		t.Run(kind.name, func(t *testing.T) {
			alice := shoppingClient(t, srv, "alice", "home", kind.opts...)
			carol := shoppingClient(t, srv, "carol", "other", kind.opts...)
			for _, tc := range []struct {
				name string
				c    shoppingv1connect.ShoppingServiceClient
				req  *shoppingv1.ListItemsRequest
				msg  string
			}{
				{"garbage token", alice, &shoppingv1.ListItemsRequest{PageToken: "page-2"}, "page_token is not one this list issued"},
				{"tampered token", alice, &shoppingv1.ListItemsRequest{PageToken: tampered}, "page_token is not one this list issued"},
				{"another household's token", carol, &shoppingv1.ListItemsRequest{PageToken: token}, "page_token is not one this list issued"},
				{"negative page size", alice, &shoppingv1.ListItemsRequest{PageSize: -5}, "page_size must not be negative"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					_, err := tc.c.ListItems(context.Background(), connect.NewRequest(tc.req))
					wantError(t, err, connect.CodeInvalidArgument, tc.msg)
				})
			}
			res, err := alice.ListItems(context.Background(), connect.NewRequest(&shoppingv1.ListItemsRequest{PageToken: token, PageSize: 1 << 30}))
			if err != nil || len(res.Msg.GetItems()) != 2 {
				t.Fatalf("the good token with a huge page size: %v, %v; want the 2 remaining items", res, err)
			}
		})
	}
}

// capped returns a server option whose shopping store, in its own
// directory, holds at most limit items per household.
func capped(t *testing.T, limit int) testkit.Option {
	t.Helper()
	store, err := shopping.OpenStore(context.Background(), filepath.Join(t.TempDir(), "shopping.db"),
		shopping.WithMaxItemsPerHousehold(limit))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return func(c *server.Config) {
		c.Modules = []module.Module{shopping.NewModule(store)}
	}
}

// TestAddItemAtCap: at the household's cap, AddItem is FAILED_PRECONDITION
// with a message that gives the cap and what to do, for every member and
// over both protocols; other households are not affected; removing an item
// makes room again.
func TestAddItemAtCap(t *testing.T) {
	t.Parallel()
	const limit = 5
	srv := testkit.StartServer(t, capped(t, limit))
	alice := shoppingClient(t, srv, "alice", "home")
	ids := addMany(t, alice, "item ", limit)
	const msg = "the list already holds 5 items, the most a household may have (5); remove some before adding more"
	for _, c := range []shoppingv1connect.ShoppingServiceClient{
		alice,
		shoppingClient(t, srv, "bob", "home"),
		shoppingClient(t, srv, "bob", "home", connect.WithGRPC()),
	} {
		_, err := c.AddItem(context.Background(), connect.NewRequest(&shoppingv1.AddItemRequest{Name: "one too many"}))
		wantError(t, err, connect.CodeFailedPrecondition, msg)
	}
	addMany(t, shoppingClient(t, srv, "carol", "other"), "item ", limit)
	// Updates still work at the cap.
	checked := true
	if _, err := alice.UpdateItem(context.Background(), connect.NewRequest(&shoppingv1.UpdateItemRequest{ItemId: ids[0], Checked: &checked})); err != nil {
		t.Fatalf("UpdateItem at the cap: %v", err)
	}
	if _, err := alice.RemoveItem(context.Background(), connect.NewRequest(&shoppingv1.RemoveItemRequest{ItemId: ids[0]})); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.AddItem(context.Background(), connect.NewRequest(&shoppingv1.AddItemRequest{Name: "fits again"})); err != nil {
		t.Fatalf("AddItem after a removal: %v", err)
	}
}

// badNames are names the character rule refuses, with what the error says.
var badNames = []struct{ desc, name, msg string }{
	{"zero-width space only", "\u200b", "name must not be empty"},
	{"zero-width characters and spaces", " \u200b\u200c\u200d\u2060\ufeff ", "name must not be empty"},
	{"Hangul filler", "\u3164", "name must contain a visible character"},
	{"braille blank", "\u2800\u2800", "name must contain a visible character"},
	{"left-to-right and right-to-left marks only", "\u200e\u200f", "name must contain a visible character"},
	{"right-to-left override", "Milk\u202e2 kg", "name must not contain bidi control character U+202E"},
	{"left-to-right embedding", "\u202aMilk", "bidi control character U+202A"},
	{"pop directional formatting", "Milk\u202c", "bidi control character U+202C"},
	{"right-to-left isolate", "Milk \u2067x\u2069", "bidi control character U+2067"},
	{"first strong isolate", "a\u2068b", "bidi control character U+2068"},
	{"line separator", "Milk\u2028Eggs", "line or paragraph separator U+2028"},
	{"paragraph separator", "Milk\u2029Eggs", "line or paragraph separator U+2029"},
	{"newline", "Milk\nEggs", "control character U+000A"},
	{"escape sequence", "\x1b[2JMilk", "control character U+001B"},
	{"NUL", "Milk\x00", "control character U+0000"},
	{"next line (C1)", "Milk\u0085Eggs", "control character U+0085"},
}

// TestInvalidNamesRejected sends names made of invisible, bidi, separator
// and control characters through AddItem and UpdateItem: each is
// INVALID_ARGUMENT with the reason, and nothing is stored. The same rule
// covers units.
func TestInvalidNamesRejected(t *testing.T) {
	t.Parallel()
	srv := testkit.StartServer(t)
	ctx := context.Background()
	alice := shoppingClient(t, srv, "alice", "home")
	existing, err := alice.AddItem(ctx, connect.NewRequest(&shoppingv1.AddItemRequest{Name: "Milk"}))
	if err != nil {
		t.Fatal(err)
	}
	id := existing.Msg.GetItem().GetId()
	for _, tc := range badNames {
		t.Run(tc.desc, func(t *testing.T) {
			_, err := alice.AddItem(ctx, connect.NewRequest(&shoppingv1.AddItemRequest{Name: tc.name}))
			wantError(t, err, connect.CodeInvalidArgument, tc.msg)
			_, err = alice.UpdateItem(ctx, connect.NewRequest(&shoppingv1.UpdateItemRequest{ItemId: id, Name: &tc.name}))
			wantError(t, err, connect.CodeInvalidArgument, tc.msg)
		})
	}
	t.Run("unit", func(t *testing.T) {
		_, err := alice.AddItem(ctx, connect.NewRequest(&shoppingv1.AddItemRequest{Name: "Milk", Unit: "l\u202e"}))
		wantError(t, err, connect.CodeInvalidArgument, "unit must not contain bidi control character U+202E")
		unit := "\u3164"
		_, err = alice.UpdateItem(ctx, connect.NewRequest(&shoppingv1.UpdateItemRequest{ItemId: id, Unit: &unit}))
		wantError(t, err, connect.CodeInvalidArgument, "unit must contain a visible character")
	})
	t.Run("grpc", func(t *testing.T) {
		grpc := shoppingClient(t, srv, "alice", "home", connect.WithGRPC())
		for _, tc := range badNames {
			_, err := grpc.AddItem(ctx, connect.NewRequest(&shoppingv1.AddItemRequest{Name: tc.name}))
			wantError(t, err, connect.CodeInvalidArgument, tc.msg)
		}
	})
	res, err := alice.ListItems(ctx, connect.NewRequest(&shoppingv1.ListItemsRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Msg.GetItems()) != 1 || !proto.Equal(res.Msg.GetItems()[0], existing.Msg.GetItem()) {
		t.Fatalf("the list changed: %v", res.Msg.GetItems())
	}
}

// TestNamesNormalized: names and units are stored in NFC with white space
// and zero-width characters trimmed, so the same text typed two ways is
// the same name; invisible characters that belong inside text stay.
func TestNamesNormalized(t *testing.T) {
	t.Parallel()
	srv := testkit.StartServer(t)
	ctx := context.Background()
	for _, kind := range []struct {
		name string
		opts []connect.ClientOption
	}{{"connect", nil}, {"grpc", []connect.ClientOption{connect.WithGRPC()}}} {
		t.Run(kind.name, func(t *testing.T) {
			c := shoppingClient(t, srv, "alice", "nfc-"+kind.name, kind.opts...)
			for _, tc := range []struct{ in, unit, want, wantUnit string }{
				{"Cre\u0300me frai\u0302che", "", "Crème fraîche", ""},
				{"\u200b Cafe\u0301\ufeff\u00a0", " \u200bl ", "Café", "l"},
				{"\u1112\u1161\u11ab\u1100\u1173\u11af", "", "한글", ""},
				{"Farmer 👩\u200d🌾 eggs", "", "Farmer 👩\u200d🌾 eggs", ""},
			} {
				res, err := c.AddItem(ctx, connect.NewRequest(&shoppingv1.AddItemRequest{Name: tc.in, Unit: tc.unit}))
				if err != nil {
					t.Fatalf("AddItem(%+q): %v", tc.in, err)
				}
				if got := res.Msg.GetItem(); got.GetName() != tc.want || got.GetUnit() != tc.wantUnit {
					t.Errorf("AddItem(%+q, %+q) stored %+q, %+q; want %+q, %+q", tc.in, tc.unit, got.GetName(), got.GetUnit(), tc.want, tc.wantUnit)
				}
				renamed := tc.in + " "
				upd, err := c.UpdateItem(ctx, connect.NewRequest(&shoppingv1.UpdateItemRequest{ItemId: res.Msg.GetItem().GetId(), Name: &renamed}))
				if err != nil || upd.Msg.GetItem().GetName() != tc.want {
					t.Errorf("UpdateItem(%+q) = %v, %v; want name %+q", renamed, upd, err, tc.want)
				}
			}
			list, err := c.ListItems(ctx, connect.NewRequest(&shoppingv1.ListItemsRequest{}))
			if err != nil {
				t.Fatal(err)
			}
			if n := len(list.Msg.GetItems()); n != 4 || list.Msg.GetItems()[1].GetName() != "Café" {
				t.Fatalf("ListItems = %v", list.Msg.GetItems())
			}
		})
	}
}
