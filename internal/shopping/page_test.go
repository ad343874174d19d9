package shopping

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// readAll follows page tokens from the first page to the last.
func readAll(t *testing.T, s *Store, household string, pageSize int) (ids []string, pages int) {
	t.Helper()
	token := ""
	for {
		page, err := s.ListPage(context.Background(), household, token, pageSize)
		if err != nil {
			t.Fatalf("ListPage after %d pages: %v", pages, err)
		}
		pages++
		for _, it := range page.Items {
			ids = append(ids, it.ID)
		}
		if page.NextPageToken == "" {
			return ids, pages
		}
		token = page.NextPageToken
	}
}

func TestListPageSizes(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	var want []string
	for i := range MaxPageSize + 7 {
		want = append(want, mustAdd(t, s, "home", "alice", fmt.Sprint("item ", i)).ID)
	}
	// 507 items.
	for _, tc := range []struct {
		pageSize, wantFirst, wantPages int
	}{
		{0, DefaultPageSize, 6}, // the default: 5 pages of 100 and one of 7
		{1, 1, 507},
		{7, 7, 73},
		{169, 169, 3},         // divides the list: no empty page at the end
		{507, MaxPageSize, 2}, // above the maximum: coerced to it
		{1 << 30, MaxPageSize, 2},
	} {
		t.Run(fmt.Sprint("size ", tc.pageSize), func(t *testing.T) {
			first, err := s.ListPage(context.Background(), "home", "", tc.pageSize)
			if err != nil {
				t.Fatal(err)
			}
			if len(first.Items) != tc.wantFirst {
				t.Errorf("first page has %d items, want %d", len(first.Items), tc.wantFirst)
			}
			ids, pages := readAll(t, s, "home", tc.pageSize)
			if fmt.Sprint(ids) != fmt.Sprint(want) {
				t.Errorf("pages of %d read %d ids, not the list in order", tc.pageSize, len(ids))
			}
			if pages != tc.wantPages {
				t.Errorf("read %d pages, want %d", pages, tc.wantPages)
			}
		})
	}
	if _, err := s.ListPage(context.Background(), "home", "", -1); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "page_size must not be negative") {
		t.Errorf("page_size -1: %v, want ErrInvalid saying so", err)
	}
	empty, err := s.ListPage(context.Background(), "nobody", "", 0)
	if err != nil || len(empty.Items) != 0 || empty.NextPageToken != "" {
		t.Errorf("empty household: %+v, %v; want no items and no token", empty, err)
	}
}

// TestListPageTokens checks that a token is opaque (it does not show the
// position), works only for the household it was issued to and the store
// (database) that issued it, survives a reopen, and that anything else is
// ErrInvalid.
func TestListPageTokens(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "shopping.db")
	s, err := OpenStore(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		mustAdd(t, s, "home", "alice", fmt.Sprint("item ", i))
		mustAdd(t, s, "other", "carol", fmt.Sprint("item ", i))
	}
	first, err := s.ListPage(ctx, "home", "", 2)
	if err != nil {
		t.Fatal(err)
	}
	token := first.NextPageToken
	if len(token) != pageTokenLen {
		t.Fatalf("token %q has length %d, want %d", token, len(token), pageTokenLen)
	}
	again, err := s.ListPage(ctx, "home", "", 2)
	if err != nil {
		t.Fatal(err)
	}
	if again.NextPageToken == token {
		t.Errorf("two tokens for the same position are equal (%q): they are not sealed with a fresh nonce", token)
	}

	// The same store accepts it after a reopen (the key is in the database).
	s.Close()
	s, err = OpenStore(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	second, err := s.ListPage(ctx, "home", token, 2)
	if err != nil {
		t.Fatalf("token after reopen: %v", err)
	}
	if len(second.Items) != 2 || second.Items[0].Name != "item 2" {
		t.Fatalf("second page = %+v, want items 2 and 3", second.Items)
	}

	otherStore := newTestStore(t)
	raw, _ := base64.RawURLEncoding.DecodeString(token)
	flip := func(i int) string {
		b := append([]byte(nil), raw...)
		b[i] ^= 1
		return base64.RawURLEncoding.EncodeToString(b)
	}
	for _, tc := range []struct {
		name, household, token string
		store                  *Store
	}{
		{"garbage", "home", "hello", s},
		{"not base64", "home", strings.Repeat("!", pageTokenLen), s},
		{"truncated", "home", token[:len(token)-1], s},
		{"longer", "home", token + "A", s},
		{"version changed", "home", flip(0), s},
		{"nonce changed", "home", flip(5), s},
		{"sealed position changed", "home", flip(15), s},
		{"tag changed", "home", flip(len(raw) - 1), s},
		{"another household's token", "other", token, s},
		{"another database's token", "home", token, otherStore},
		{"huge", "home", strings.Repeat("A", 1<<16), s},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.store.ListPage(ctx, tc.household, tc.token, 2)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "page_token is not one this list issued") {
				t.Fatalf("ListPage = %v, want ErrInvalid about page_token", err)
			}
		})
	}
}

// TestListPageConcurrentInserts reads a list page by page while other
// goroutines add items and rename existing ones between and during the
// reads: every item that was there before is read exactly once, in order,
// and the items added meanwhile that were read come after them, in the
// order they were added.
func TestListPageConcurrentInserts(t *testing.T) {
	t.Parallel()
	s := newTestStore(t)
	ctx := context.Background()
	var before []string
	for i := range 300 {
		before = append(before, mustAdd(t, s, "home", "alice", fmt.Sprint("before ", i)).ID)
	}
	stop := make(chan struct{})
	var mu sync.Mutex
	var added []string
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			it, err := s.Add(ctx, "home", "bob", NewItem{Name: fmt.Sprint("during ", i)})
			if err != nil {
				t.Errorf("concurrent add: %v", err)
				return
			}
			mu.Lock()
			added = append(added, it.ID)
			mu.Unlock()
		}
	})
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := s.Update(ctx, "home", before[i%len(before)], Patch{Name: ptr(fmt.Sprint("renamed ", i))}); err != nil {
				t.Errorf("concurrent update: %v", err)
				return
			}
		}
	})
	ids, _ := readAll(t, s, "home", 7)
	close(stop)
	wg.Wait()
	checkPagedList(t, ids, before, added)
}

// checkPagedList checks that ids read page by page are before, in order,
// followed by a prefix of added (the items added, in order, while paging).
func checkPagedList(t *testing.T, ids, before, added []string) {
	t.Helper()
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Fatalf("item %s read twice", id)
		}
		seen[id] = true
	}
	if len(ids) < len(before) || fmt.Sprint(ids[:len(before)]) != fmt.Sprint(before) {
		t.Fatalf("the %d items that were there before are not read exactly once, in order (read %d items)", len(before), len(ids))
	}
	rest := ids[len(before):]
	if len(rest) > len(added) || fmt.Sprint(rest) != fmt.Sprint(added[:len(rest)]) {
		t.Fatalf("items added while paging were read out of order or with gaps: %d read, %d added", len(rest), len(added))
	}
	t.Logf("read %d items that were there before and %d of the %d added while paging", len(before), len(rest), len(added))
}

func TestAddAtCap(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := OpenStore(ctx, filepath.Join(t.TempDir(), "shopping.db"), WithMaxItemsPerHousehold(3))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var items []Item
	for i := range 3 {
		items = append(items, mustAdd(t, s, "home", "alice", fmt.Sprint("item ", i)))
	}
	_, err = s.Add(ctx, "home", "alice", NewItem{Name: "one too many"})
	if !errors.Is(err, ErrListFull) || !strings.Contains(err.Error(), "the list already holds 3 items, the most a household may have (3); remove some") {
		t.Fatalf("add at the cap = %v, want ErrListFull with the count and the cap", err)
	}
	mustAdd(t, s, "other", "carol", "another household has its own cap")
	if err := s.Remove(ctx, "home", items[0].ID); err != nil {
		t.Fatal(err)
	}
	mustAdd(t, s, "home", "alice", "fits again")
	wantCounts(t, s)

	unlimited, err := OpenStore(ctx, filepath.Join(t.TempDir(), "shopping.db"), WithMaxItemsPerHousehold(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer unlimited.Close()
	for i := range DefaultPageSize {
		mustAdd(t, unlimited, "home", "alice", fmt.Sprint("item ", i))
	}
}

// TestAddAtCapConcurrent checks that concurrent adds cannot overshoot the
// cap: the count and the insert happen under one write lock.
func TestAddAtCapConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const limit, tries = 10, 40
	s, err := OpenStore(ctx, filepath.Join(t.TempDir(), "shopping.db"), WithMaxItemsPerHousehold(limit))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, full := 0, 0
	for i := range tries {
		wg.Go(func() {
			_, err := s.Add(ctx, "home", "alice", NewItem{Name: fmt.Sprint("item ", i)})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, ErrListFull):
				full++
			default:
				t.Errorf("add: %v", err)
			}
		})
	}
	wg.Wait()
	items, err := s.List(ctx, "home")
	if err != nil {
		t.Fatal(err)
	}
	if ok != limit || full != tries-limit || len(items) != limit {
		t.Fatalf("%d adds succeeded, %d were refused, the list holds %d; want %d, %d, %d", ok, full, len(items), limit, tries-limit, limit)
	}
	wantCounts(t, s)
}

// TestItemCountMigration opens a database written before the item count
// existed: the migration counts the items already there, so the cap holds
// for old lists too, and the triggers keep the count from then on.
func TestItemCountMigration(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "shopping.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(migrations[0] + `; PRAGMA user_version = 1;
		INSERT INTO lists (id, household_id, create_time) VALUES ('list_home', 'home', 0), ('list_other', 'other', 0);`); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := db.Exec(`INSERT INTO items (`+itemColumns+`) VALUES (?, 'list_home', 'home', ?, 0, '', 0, 'alice', 0, 0, 1)`,
			NewItemID(), fmt.Sprint("old ", i)); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	s, err := OpenStore(ctx, path, WithMaxItemsPerHousehold(3))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Add(ctx, "home", "alice", NewItem{Name: "new"}); !errors.Is(err, ErrListFull) {
		t.Fatalf("add to an old list at the cap = %v, want ErrListFull", err)
	}
	mustAdd(t, s, "other", "carol", "an old empty list has room")
	items, err := s.List(ctx, "home")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, "home", items[0].ID); err != nil {
		t.Fatal(err)
	}
	mustAdd(t, s, "home", "alice", "fits after a removal")
	wantCounts(t, s)
}

// wantCounts checks that every list's item_count equals its items.
func wantCounts(t *testing.T, s *Store) {
	t.Helper()
	rows, err := s.db.Query(`SELECT id, item_count, (SELECT COUNT(*) FROM items WHERE list_id = lists.id) FROM lists`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var kept, counted int
		if err := rows.Scan(&id, &kept, &counted); err != nil {
			t.Fatal(err)
		}
		if kept != counted {
			t.Errorf("list %s: item_count %d, but %d items", id, kept, counted)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkAddNearCap measures an add to a list one short of the default
// cap and to an almost empty list: checking the cap reads a kept count, so
// the two cost the same.
func BenchmarkAddNearCap(b *testing.B) {
	ctx := context.Background()
	for _, n := range []int{1, DefaultMaxItemsPerHousehold - 1} {
		b.Run(fmt.Sprint("items=", n), func(b *testing.B) {
			s, err := OpenStore(ctx, filepath.Join(b.TempDir(), "shopping.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			for i := range n {
				if _, err := s.Add(ctx, "home", "alice", NewItem{Name: fmt.Sprint("item ", i)}); err != nil {
					b.Fatal(err)
				}
			}
			for b.Loop() {
				it, err := s.Add(ctx, "home", "alice", NewItem{Name: "one more"})
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := s.Remove(ctx, "home", it.ID); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}
