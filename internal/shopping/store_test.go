package shopping

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// newTestStore opens a store in a fresh directory and closes it when the
// test ends.
func newTestStore(t *testing.T) *Store {
	t.Helper()
	s, err := OpenStore(context.Background(), filepath.Join(t.TempDir(), "shopping.db"))
	if err != nil {
		t.Fatalf("OpenStore: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// fakeClock returns a clock that advances by one second per reading, so
// every write gets a distinct, predictable time.
func fakeClock(start time.Time) func() time.Time {
	var mu sync.Mutex
	now := start
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now = now.Add(time.Second)
		return now
	}
}

func ptr[T any](v T) *T { return &v }

func mustAdd(t *testing.T, s *Store, household, user, name string) Item {
	t.Helper()
	it, err := s.Add(context.Background(), household, user, NewItem{Name: name})
	if err != nil {
		t.Fatalf("Add(%q, %q): %v", household, name, err)
	}
	return it
}

func TestOpenStorePragmasAndSchema(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	ctx := context.Background()
	for _, tc := range []struct {
		pragma string
		want   string
	}{
		{"journal_mode", "wal"},
		{"foreign_keys", "1"},
		{"busy_timeout", fmt.Sprint(busyTimeout.Milliseconds())},
		{"user_version", fmt.Sprint(len(migrations))},
	} {
		var got string
		if err := s.db.QueryRowContext(ctx, "PRAGMA "+tc.pragma).Scan(&got); err != nil {
			t.Fatalf("PRAGMA %s: %v", tc.pragma, err)
		}
		if got != tc.want {
			t.Errorf("PRAGMA %s = %q, want %q", tc.pragma, got, tc.want)
		}
	}
}

func TestOpenStoreReopenKeepsData(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "shopping.db")
	s, err := OpenStore(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	added := mustAdd(t, s, "home", "alice", "Milk")
	s.Close()

	// Reopening runs no migration twice and keeps the items.
	s, err = OpenStore(ctx, path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	items, err := s.List(ctx, "home")
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 || items[0] != added {
		t.Fatalf("after reopen List = %+v, want [%+v]", items, added)
	}
}

func TestOpenStoreRefusesNewerSchema(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "shopping.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(fmt.Sprintf("PRAGMA user_version = %d", len(migrations)+1)); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if s, err := OpenStore(ctx, path); err == nil {
		s.Close()
		t.Fatal("OpenStore on a newer schema succeeded, want an error")
	} else if !strings.Contains(err.Error(), "newer") {
		t.Errorf("error %q does not say the schema is newer", err)
	}
}

func TestOpenStoreBadPath(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"", filepath.Join(t.TempDir(), "a?b.db"), filepath.Join(t.TempDir(), "missing", "dir", "x.db")} {
		if s, err := OpenStore(context.Background(), path); err == nil {
			s.Close()
			t.Errorf("OpenStore(%q) succeeded, want an error", path)
		}
	}
}

func TestAddValidation(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	for _, tc := range []struct {
		name      string
		in        NewItem
		wantErr   string // substring of the error; "" means success
		wantName  string
		wantUnit  string
		household string
		user      string
	}{
		{name: "name only", in: NewItem{Name: "Milk"}, wantName: "Milk"},
		{name: "all fields", in: NewItem{Name: "Flour", Quantity: 1.5, Unit: "kg"}, wantName: "Flour", wantUnit: "kg"},
		{name: "trimmed", in: NewItem{Name: "  Eggs \t", Unit: " box "}, wantName: "Eggs", wantUnit: "box"},
		{name: "unicode name", in: NewItem{Name: "Crème fraîche 🥛"}, wantName: "Crème fraîche 🥛"},
		{name: "200 runes", in: NewItem{Name: strings.Repeat("é", 200)}, wantName: strings.Repeat("é", 200)},
		{name: "max quantity", in: NewItem{Name: "Rice", Quantity: MaxQuantity}, wantName: "Rice"},
		{name: "32 rune unit", in: NewItem{Name: "X", Unit: strings.Repeat("ü", 32)}, wantName: "X", wantUnit: strings.Repeat("ü", 32)},
		{name: "empty name", in: NewItem{}, wantErr: "name must not be empty"},
		{name: "only spaces", in: NewItem{Name: " \t\n "}, wantErr: "name must not be empty"},
		{name: "201 runes", in: NewItem{Name: strings.Repeat("a", 201)}, wantErr: "name must be at most 200"},
		{name: "invalid utf8", in: NewItem{Name: "Milk\xff"}, wantErr: "name must be valid UTF-8"},
		{name: "control char", in: NewItem{Name: "Milk\nEggs"}, wantErr: "name must not contain control"},
		{name: "negative quantity", in: NewItem{Name: "Milk", Quantity: -1}, wantErr: "quantity must be between"},
		{name: "huge quantity", in: NewItem{Name: "Milk", Quantity: MaxQuantity + 1}, wantErr: "quantity must be between"},
		{name: "NaN quantity", in: NewItem{Name: "Milk", Quantity: math.NaN()}, wantErr: "quantity must be a finite"},
		{name: "Inf quantity", in: NewItem{Name: "Milk", Quantity: math.Inf(1)}, wantErr: "quantity must be a finite"},
		{name: "long unit", in: NewItem{Name: "Milk", Unit: strings.Repeat("l", 33)}, wantErr: "unit must be at most 32"},
		{name: "invalid utf8 unit", in: NewItem{Name: "Milk", Unit: "\xc3"}, wantErr: "unit must be valid UTF-8"},
		{name: "no household", in: NewItem{Name: "Milk"}, household: "-", wantErr: "household id is empty"},
		{name: "no user", in: NewItem{Name: "Milk"}, user: "-", wantErr: "user id is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			household, user := "home", "alice"
			if tc.household == "-" {
				household = ""
			}
			if tc.user == "-" {
				user = ""
			}
			it, err := s.Add(context.Background(), household, user, tc.in)
			if tc.wantErr != "" {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("Add error = %v, want ErrInvalid", err)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Add error = %q, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Add: %v", err)
			}
			if it.Name != tc.wantName || it.Unit != tc.wantUnit || it.Quantity != tc.in.Quantity {
				t.Errorf("stored name/unit/quantity = %q/%q/%v, want %q/%q/%v",
					it.Name, it.Unit, it.Quantity, tc.wantName, tc.wantUnit, tc.in.Quantity)
			}
			if err := ValidateItemID(it.ID); err != nil {
				t.Errorf("new id %q is not well-formed: %v", it.ID, err)
			}
			if it.ListID != "list_home" || it.HouseholdID != "home" || it.AddedBy != "alice" || it.Version != 1 || it.Checked {
				t.Errorf("unexpected item %+v", it)
			}
		})
	}
}

func TestValidateItemID(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{NewItemID(), true},
		{"itm_abcdefghijklmnopqrstuvwxyz", true},
		{"", false},
		{"itm_", false},
		{"itm_abcdefghijklmnopqrstuvwxy", false},   // 25
		{"itm_abcdefghijklmnopqrstuvwxyza", false}, // 27
		{"itx_abcdefghijklmnopqrstuvwxyz", false},
		{"itm_ABCDEFGHIJKLMNOPQRSTUVWXYZ", false},
		{"itm_abcdefghijklmnopqrstuvwx01", false}, // 0 and 1 are not base32
		{"itm_abcdefghijklmnopqrstuvw' --", false},
	} {
		err := ValidateItemID(tc.id)
		if tc.ok && err != nil {
			t.Errorf("ValidateItemID(%q) = %v, want nil", tc.id, err)
		}
		if !tc.ok && !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidateItemID(%q) = %v, want ErrInvalid", tc.id, err)
		}
	}
}

func TestNewItemIDUnique(t *testing.T) {
	t.Parallel()
	seen := make(map[string]bool)
	for range 10_000 {
		id := NewItemID()
		if seen[id] {
			t.Fatalf("duplicate id %q", id)
		}
		seen[id] = true
	}
}

func TestListOldestFirst(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	ctx := context.Background()
	if items, err := s.List(ctx, "home"); err != nil || len(items) != 0 {
		t.Fatalf("List on a new household = %v, %v; want empty, nil", items, err)
	}
	var want []string
	for i := range 5 {
		want = append(want, mustAdd(t, s, "home", "alice", fmt.Sprint("item ", i)).ID)
	}
	items, err := s.List(ctx, "home")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, it := range items {
		got = append(got, it.ID)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("List order = %v, want %v", got, want)
	}
}

// TestHouseholdIsolation checks that no operation of one household sees or
// touches another household's item: each reports ErrNotFound and the item
// stays as it was.
func TestHouseholdIsolation(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	ctx := context.Background()
	theirs := mustAdd(t, s, "home", "alice", "Milk")
	mine := mustAdd(t, s, "other", "carol", "Bread")

	items, err := s.List(ctx, "other")
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 || items[0].ID != mine.ID {
		t.Fatalf("List(other) = %+v, want only %s", items, mine.ID)
	}
	if mine.ListID == theirs.ListID {
		t.Fatalf("two households share list %s", mine.ListID)
	}

	for _, tc := range []struct {
		name string
		op   func() error
	}{
		{"update", func() error {
			_, err := s.Update(ctx, "other", theirs.ID, Patch{Checked: ptr(true)})
			return err
		}},
		{"remove", func() error { return s.Remove(ctx, "other", theirs.ID) }},
		{"household prefix", func() error { return s.Remove(ctx, "hom", theirs.ID) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.op(); !errors.Is(err, ErrNotFound) {
				t.Fatalf("error = %v, want ErrNotFound", err)
			}
		})
	}
	items, err = s.List(ctx, "home")
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 || items[0] != theirs {
		t.Fatalf("the other household's item changed: %+v, want %+v", items, theirs)
	}
}

func TestUpdatePartial(t *testing.T) {
	t.Parallel()
	start := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		patch Patch
		want  func(it *Item) // applies the expected change to the original
	}{
		{"name", Patch{Name: ptr("  Oat milk ")}, func(it *Item) { it.Name = "Oat milk" }},
		{"quantity", Patch{Quantity: ptr(3.0)}, func(it *Item) { it.Quantity = 3 }},
		{"quantity to zero", Patch{Quantity: ptr(0.0)}, func(it *Item) { it.Quantity = 0 }},
		{"unit", Patch{Unit: ptr("l")}, func(it *Item) { it.Unit = "l" }},
		{"unit cleared", Patch{Unit: ptr("")}, func(it *Item) { it.Unit = "" }},
		{"checked", Patch{Checked: ptr(true)}, func(it *Item) { it.Checked = true }},
		{"unchanged value still counts", Patch{Name: ptr("Milk")}, func(it *Item) {}},
		{"everything", Patch{Name: ptr("Cream"), Quantity: ptr(0.5), Unit: ptr("cup"), Checked: ptr(true)},
			func(it *Item) { it.Name, it.Quantity, it.Unit, it.Checked = "Cream", 0.5, "cup", true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newTestStore(t)
			s.now = fakeClock(start)
			ctx := context.Background()
			orig, err := s.Add(ctx, "home", "alice", NewItem{Name: "Milk", Quantity: 2, Unit: "bottles"})
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Update(ctx, "home", orig.ID, tc.patch)
			if err != nil {
				t.Fatalf("Update: %v", err)
			}
			want := orig
			tc.want(&want)
			want.Version = 2
			want.UpdateTime = start.Add(2 * time.Second)
			if got != want {
				t.Fatalf("Update returned\n %+v\nwant\n %+v", got, want)
			}
			items, err := s.List(ctx, "home")
			if err != nil {
				t.Fatal(err)
			}
			if len(items) != 1 || items[0] != want {
				t.Fatalf("List after Update = %+v, want [%+v]", items, want)
			}
		})
	}
}

func TestUpdateErrors(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	ctx := context.Background()
	it := mustAdd(t, s, "home", "alice", "Milk")
	for _, tc := range []struct {
		name    string
		id      string
		patch   Patch
		wantErr error
		wantMsg string
	}{
		{"empty patch", it.ID, Patch{}, ErrInvalid, "sets no field"},
		{"blank name", it.ID, Patch{Name: ptr("   ")}, ErrInvalid, "name must not be empty"},
		{"negative quantity", it.ID, Patch{Quantity: ptr(-0.5)}, ErrInvalid, "quantity"},
		{"NaN quantity", it.ID, Patch{Quantity: ptr(math.NaN())}, ErrInvalid, "quantity"},
		{"long unit", it.ID, Patch{Unit: ptr(strings.Repeat("x", 40))}, ErrInvalid, "unit"},
		{"malformed id", "42", Patch{Checked: ptr(true)}, ErrInvalid, "item_id"},
		{"missing id", "", Patch{Checked: ptr(true)}, ErrInvalid, "item_id is required"},
		{"unknown id", NewItemID(), Patch{Checked: ptr(true)}, ErrNotFound, "not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Update(ctx, "home", tc.id, tc.patch)
			if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("Update error = %v, want %v containing %q", err, tc.wantErr, tc.wantMsg)
			}
		})
	}
	// A failed update changes nothing.
	items, err := s.List(ctx, "home")
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 || items[0] != it {
		t.Fatalf("failed updates changed the item: %+v, want %+v", items, it)
	}
}

func TestUpdateVersionIncrements(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	ctx := context.Background()
	it := mustAdd(t, s, "home", "alice", "Milk")
	for want := int64(2); want <= 6; want++ {
		got, err := s.Update(ctx, "home", it.ID, Patch{Checked: ptr(want%2 == 0)})
		if err != nil {
			t.Fatal(err)
		}
		if got.Version != want {
			t.Fatalf("version after update = %d, want %d", got.Version, want)
		}
		if got.UpdateTime.Before(got.CreateTime) {
			t.Fatalf("update time %v before create time %v", got.UpdateTime, got.CreateTime)
		}
	}
}

// TestUpdateTimeNeverGoesBack checks that a wall clock stepping backwards
// does not make update_time older than it was.
func TestUpdateTimeNeverGoesBack(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	ctx := context.Background()
	t0 := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return t0 }
	it := mustAdd(t, s, "home", "alice", "Milk")
	s.now = func() time.Time { return t0.Add(-time.Hour) }
	got, err := s.Update(ctx, "home", it.ID, Patch{Checked: ptr(true)})
	if err != nil {
		t.Fatal(err)
	}
	if !got.UpdateTime.Equal(t0) {
		t.Fatalf("update time = %v, want %v", got.UpdateTime, t0)
	}
}

func TestRemove(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	ctx := context.Background()
	keep := mustAdd(t, s, "home", "alice", "Milk")
	gone := mustAdd(t, s, "home", "alice", "Bread")
	if err := s.Remove(ctx, "home", gone.ID); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	for _, tc := range []struct {
		name    string
		id      string
		wantErr error
	}{
		{"twice", gone.ID, ErrNotFound},
		{"unknown", NewItemID(), ErrNotFound},
		{"malformed", "itm_nope", ErrInvalid},
		{"empty", "", ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.Remove(ctx, "home", tc.id); !errors.Is(err, tc.wantErr) {
				t.Fatalf("Remove error = %v, want %v", err, tc.wantErr)
			}
		})
	}
	if _, err := s.Update(ctx, "home", gone.ID, Patch{Checked: ptr(true)}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Update after Remove = %v, want ErrNotFound", err)
	}
	items, err := s.List(ctx, "home")
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 || items[0] != keep {
		t.Fatalf("List after Remove = %+v, want [%+v]", items, keep)
	}
}

// TestConcurrentWrites adds from many goroutines over several households
// (the first Add of each household also creates its list, so list creation
// races too) while others update and list, and checks nothing is lost.
// TestWritersQueueBehindASlowWrite checks that this process's writers wait
// for their turn however long a write takes (here, ten busy timeouts behind
// a hook, as behind a stalled publish), instead of polling SQLite's lock
// and failing with SQLITE_BUSY when they lose the race for it.
func TestWritersQueueBehindASlowWrite(t *testing.T) {
	t.Parallel()
	const timeout = 100 * time.Millisecond
	s, err := OpenStore(context.Background(), filepath.Join(t.TempDir(), "shopping.db"), withBusyTimeout(timeout))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()

	holding := make(chan struct{})
	slowDone := make(chan error, 1)
	go func() {
		_, err := s.add(ctx, "h", "alice", NewItem{Name: "slow"}, func(Item) error {
			close(holding)
			time.Sleep(10 * timeout) // holds the write lock
			return nil
		})
		slowDone <- err
	}()
	<-holding
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Go(func() {
			if _, err := s.Add(ctx, "h", "bob", NewItem{Name: fmt.Sprint("queued ", i)}); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("a writer behind the slow write: %v", err)
	}
	if err := <-slowDone; err != nil {
		t.Fatalf("the slow write: %v", err)
	}
	if items, err := s.List(ctx, "h"); err != nil || len(items) != 21 {
		t.Fatalf("List = %d items, %v; want 21", len(items), err)
	}
}

// A writer waiting for its turn gives up when its caller does.
func TestWriterWaitHonoursContext(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	holding, release, slowDone := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		_, err := s.add(context.Background(), "h", "alice", NewItem{Name: "slow"}, func(Item) error {
			close(holding)
			<-release
			return nil
		})
		slowDone <- err
	}()
	<-holding
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Add(ctx, "h", "bob", NewItem{Name: "late"}); !errors.Is(err, context.Canceled) {
		t.Errorf("Add with a canceled context while another write holds the lock = %v, want context.Canceled", err)
	}
	close(release)
	if err := <-slowDone; err != nil {
		t.Fatalf("the slow write: %v", err)
	}
}

func TestConcurrentWrites(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	ctx := context.Background()
	const households, perHousehold = 4, 25
	seed := mustAdd(t, s, "h0", "alice", "seed")

	var wg sync.WaitGroup
	errs := make(chan error, households*perHousehold+100)
	for h := range households {
		for i := range perHousehold {
			wg.Go(func() {
				if _, err := s.Add(ctx, fmt.Sprint("h", h), "alice", NewItem{Name: fmt.Sprint("item ", i)}); err != nil {
					errs <- fmt.Errorf("add h%d/%d: %w", h, i, err)
				}
			})
		}
	}
	const updates = 50
	for range updates {
		wg.Go(func() {
			if _, err := s.Update(ctx, "h0", seed.ID, Patch{Quantity: ptr(1.0)}); err != nil {
				errs <- fmt.Errorf("update: %w", err)
			}
		})
		wg.Go(func() {
			if _, err := s.List(ctx, "h0"); err != nil {
				errs <- fmt.Errorf("list: %w", err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	ids := make(map[string]bool)
	for h := range households {
		items, err := s.List(ctx, fmt.Sprint("h", h))
		if err != nil {
			t.Fatal(err)
		}
		want := perHousehold
		if h == 0 {
			want++ // the seed
		}
		if len(items) != want {
			t.Errorf("household h%d has %d items, want %d", h, len(items), want)
		}
		for _, it := range items {
			if ids[it.ID] {
				t.Errorf("duplicate id %s", it.ID)
			}
			ids[it.ID] = true
			if it.ID == seed.ID && it.Version != 1+updates {
				t.Errorf("seed version = %d after %d concurrent updates, want %d", it.Version, updates, 1+updates)
			}
		}
	}
}
