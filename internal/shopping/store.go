package shopping

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
	"time"

	"modernc.org/sqlite" // registers the pure-Go "sqlite" driver
)

// Item is one line of a household's shopping list as the store keeps it.
type Item struct {
	// ID is "itm_" followed by 26 random base32 characters; see [NewItemID].
	ID string
	// ListID is the household's list, [ListID] of HouseholdID.
	ListID string
	// HouseholdID owns the item. Every query is scoped by it.
	HouseholdID string
	// Name is what to buy, trimmed, 1 to [MaxNameLen] characters.
	Name string
	// Quantity is how many units to buy; 0 means unspecified.
	Quantity float64
	// Unit qualifies Quantity, e.g. "kg"; empty for a count.
	Unit string
	// Checked is true once someone put the item in the basket.
	Checked bool
	// AddedBy is the user who added the item.
	AddedBy string
	// CreateTime is when the item was added (UTC).
	CreateTime time.Time
	// UpdateTime is when the item last changed (UTC); equal to CreateTime
	// until the first update.
	UpdateTime time.Time
	// Version is 1 when added and grows by one with every update, so clients
	// can tell which of two copies is newer.
	Version int64
}

// NewItem is the input of [Store.Add]. Only Name is required.
type NewItem struct {
	Name     string
	Quantity float64
	Unit     string
}

// Patch is the input of [Store.Update]: nil fields are left as they are.
type Patch struct {
	Name     *string
	Quantity *float64
	Unit     *string
	Checked  *bool
}

// empty reports whether the patch sets no field.
func (p Patch) empty() bool {
	return p.Name == nil && p.Quantity == nil && p.Unit == nil && p.Checked == nil
}

// ListID returns the id of a household's list. A household has exactly one
// list, so the id is derived ("list_" + household id) rather than stored
// and looked up: clients can correlate events with the list without a round
// trip, and a second list per household would need a new id scheme anyway.
func ListID(householdID string) string { return "list_" + householdID }

// Store keeps shopping lists in one SQLite database.
//
// A Store is safe for concurrent use. SQLite allows one writer at a time:
// this process's writers queue in Go for their turn, writers of other
// processes wait on the busy timeout (5 s), and readers never wait for
// writers (WAL mode).
type Store struct {
	db *sql.DB
	// now is the clock; tests replace it to control timestamps.
	now func() time.Time
	// maxItems caps the items of one household; 0 means no cap.
	maxItems int
	// pageTokens seals and opens ListPage's page tokens.
	pageTokens *pageTokenCodec
	// writeSlot holds one token while a write transaction is open: see
	// beginWrite.
	writeSlot chan struct{}
	// busyTimeout is the busy timeout of the store's connections.
	busyTimeout time.Duration
}

// DefaultMaxItemsPerHousehold is the cap on one household's items unless
// [WithMaxItemsPerHousehold] says otherwise. A real list holds tens of
// items; 5,000 leaves room for households that never remove anything while
// bounding what one member at the rate limit can pile up (about 1.7 million
// adds a day otherwise) and what reading the whole list costs (10 pages of
// [MaxPageSize]: about 0.5 MB in protobuf with everyday names, 5.4 MB with
// the longest names).
const DefaultMaxItemsPerHousehold = 5000

// StoreOption configures [OpenStore].
type StoreOption func(*Store)

// WithMaxItemsPerHousehold caps the items one household may have: adding
// to a list that holds n items fails with [ErrListFull] until some are
// removed. Lists that already hold more (the cap was lowered) keep their
// items; n <= 0 removes the cap.
func WithMaxItemsPerHousehold(n int) StoreOption {
	return func(s *Store) { s.maxItems = max(n, 0) }
}

// busyTimeout is how long a write waits for another process's writer
// before failing with SQLITE_BUSY. Writes here take microseconds, so
// waiting this long only happens under pathological contention.
const busyTimeout = 5 * time.Second

// withBusyTimeout replaces [busyTimeout], for tests that would otherwise wait
// it out.
func withBusyTimeout(d time.Duration) StoreOption {
	return func(s *Store) { s.busyTimeout = d }
}

// sqliteBusy is SQLITE_BUSY, the primary result code (the low byte of an
// extended one) of a write that waited busyTimeout for the lock in vain.
const sqliteBusy = 5

// isBusy reports whether err is SQLite's "database is locked": another
// write held the lock for longer than busyTimeout (e.g. behind a publish
// that stalled). Nothing was written; the caller may retry.
func isBusy(err error) bool {
	var serr *sqlite.Error
	return errors.As(err, &serr) && serr.Code()&0xff == sqliteBusy
}

// OpenStore opens (creating if needed) the database at path and brings its
// schema up to date. The server passes "<data-dir>/shopping.db". Without
// options a household holds at most [DefaultMaxItemsPerHousehold] items.
// The caller must Close the store.
func OpenStore(ctx context.Context, path string, opts ...StoreOption) (*Store, error) {
	if path == "" {
		return nil, errors.New("shopping: open store: empty path")
	}
	// The driver splits the DSN at the first '?', so such a path would be
	// silently truncated.
	if strings.Contains(path, "?") {
		return nil, fmt.Errorf("shopping: open store: path %q must not contain '?'", path)
	}
	// Settings applied to every pooled connection:
	//   - WAL: readers do not block the writer and vice versa.
	//   - busy_timeout: a second writer waits instead of failing.
	//   - foreign_keys: SQLite leaves them off unless asked, per connection.
	//   - synchronous=NORMAL: durable across process crashes in WAL mode;
	//     a power cut may lose the last commits, which is fine for a list.
	//   - _txlock=immediate: transactions take the write lock at BEGIN, so
	//     two read-then-write transactions cannot deadlock on lock upgrade
	//     (which busy_timeout does not resolve).
	s := &Store{now: time.Now, maxItems: DefaultMaxItemsPerHousehold, writeSlot: make(chan struct{}, 1), busyTimeout: busyTimeout}
	for _, o := range opts {
		o(s)
	}
	dsn := path + fmt.Sprintf("?_busy_timeout=%d&_journal_mode=WAL&_foreign_keys=1&_synchronous=NORMAL&_txlock=immediate",
		s.busyTimeout.Milliseconds())
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("shopping: open store %s: %w", path, err)
	}
	s.db = db
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("shopping: open store %s: %w", path, err)
	}
	key, err := s.secret(ctx, "page_token")
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("shopping: open store %s: %w", path, err)
	}
	if s.pageTokens, err = newPageTokenCodec(key); err != nil {
		db.Close()
		return nil, fmt.Errorf("shopping: open store %s: %w", path, err)
	}
	return s, nil
}

// beginWrite waits for this process's turn to write, then begins a write
// transaction. done rolls back whatever was not committed and passes the
// turn on. Without the queue, every waiting writer polls SQLite's lock on
// its busy handler, which is unfair: on a loaded machine, with a hundred
// concurrent writers, one could lose every poll for the whole busy timeout
// and fail with SQLITE_BUSY although the database was never stuck. The
// queue honours ctx, so a caller that gives up stops waiting.
func (s *Store) beginWrite(ctx context.Context) (tx *sql.Tx, done func(), err error) {
	select {
	case s.writeSlot <- struct{}{}:
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
	release := func() { <-s.writeSlot }
	tx, err = s.db.BeginTx(ctx, nil)
	if err != nil {
		release()
		return nil, nil, err
	}
	return tx, func() { _ = tx.Rollback(); release() }, nil
}

// Close closes the database. Calls in flight may fail afterwards.
func (s *Store) Close() error { return s.db.Close() }

// migrations[i] takes the schema from user_version i to i+1. Append only:
// never edit a migration that has shipped.
var migrations = []string{
	// 1: lists and items.
	//
	// items carries household_id beside list_id so that every query filters
	// on the owning household directly; the composite foreign key keeps the
	// two consistent. seq orders items oldest first without relying on
	// timestamps, which can tie.
	`CREATE TABLE lists (
		id           TEXT PRIMARY KEY,
		household_id TEXT NOT NULL UNIQUE,
		create_time  INTEGER NOT NULL,
		UNIQUE (id, household_id)
	) STRICT;
	CREATE TABLE items (
		seq          INTEGER PRIMARY KEY AUTOINCREMENT,
		id           TEXT NOT NULL UNIQUE,
		list_id      TEXT NOT NULL,
		household_id TEXT NOT NULL,
		name         TEXT NOT NULL,
		quantity     REAL NOT NULL DEFAULT 0,
		unit         TEXT NOT NULL DEFAULT '',
		checked      INTEGER NOT NULL DEFAULT 0,
		added_by     TEXT NOT NULL,
		create_time  INTEGER NOT NULL,
		update_time  INTEGER NOT NULL,
		version      INTEGER NOT NULL DEFAULT 1,
		FOREIGN KEY (list_id, household_id) REFERENCES lists (id, household_id) ON DELETE CASCADE
	) STRICT;
	CREATE INDEX items_household_seq ON items (household_id, seq);`,
	// 2: secrets the store keeps for itself, such as the key that seals
	// page tokens. They live in the database so that every process sharing
	// it (several nodes, a restart) accepts the tokens the others issued.
	//
	// lists.item_count, kept by triggers in the same transaction as every
	// insert and delete, lets an add check the household's cap in constant
	// time instead of counting up to the cap's worth of index entries while
	// holding the write lock.
	`CREATE TABLE secrets (
		name  TEXT PRIMARY KEY,
		value BLOB NOT NULL
	) STRICT;
	ALTER TABLE lists ADD COLUMN item_count INTEGER NOT NULL DEFAULT 0;
	UPDATE lists SET item_count = (SELECT COUNT(*) FROM items WHERE items.list_id = lists.id);
	CREATE TRIGGER items_count_insert AFTER INSERT ON items BEGIN
		UPDATE lists SET item_count = item_count + 1 WHERE id = NEW.list_id;
	END;
	CREATE TRIGGER items_count_delete AFTER DELETE ON items BEGIN
		UPDATE lists SET item_count = item_count - 1 WHERE id = OLD.list_id;
	END;`,
}

// secret returns the store's 32-byte secret called name, creating it on
// first use. When two processes race, the first insert wins and both read
// it back.
func (s *Store) secret(ctx context.Context, name string) ([]byte, error) {
	fresh := make([]byte, 32)
	rand.Read(fresh) // never fails; see crypto/rand.Read
	if _, err := s.db.ExecContext(ctx,
		`INSERT INTO secrets (name, value) VALUES (?, ?) ON CONFLICT DO NOTHING`, name, fresh); err != nil {
		return nil, fmt.Errorf("create secret %s: %w", name, err)
	}
	var key []byte
	if err := s.db.QueryRowContext(ctx, `SELECT value FROM secrets WHERE name = ?`, name).Scan(&key); err != nil {
		return nil, fmt.Errorf("read secret %s: %w", name, err)
	}
	return key, nil
}

// migrate applies the migrations the database has not seen yet, each in its
// own transaction together with the user_version bump, so a crash leaves the
// schema at a version boundary. BEGIN IMMEDIATE (from _txlock) makes two
// processes opening the same file take turns.
func (s *Store) migrate(ctx context.Context) error {
	for {
		done, err := s.migrateOne(ctx)
		if err != nil || done {
			return err
		}
	}
}

func (s *Store) migrateOne(ctx context.Context) (done bool, err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback()
	var version int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return false, fmt.Errorf("migrate: read user_version: %w", err)
	}
	switch {
	case version == len(migrations):
		return true, nil
	case version > len(migrations) || version < 0:
		return false, fmt.Errorf("migrate: database schema version %d is newer than this program knows (%d)", version, len(migrations))
	}
	if _, err := tx.ExecContext(ctx, migrations[version]); err != nil {
		return false, fmt.Errorf("migrate to version %d: %w", version+1, err)
	}
	// PRAGMA takes no bind parameters; version is our own integer.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", version+1)); err != nil {
		return false, fmt.Errorf("migrate to version %d: %w", version+1, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("migrate to version %d: %w", version+1, err)
	}
	return false, nil
}

const itemColumns = `id, list_id, household_id, name, quantity, unit, checked, added_by, create_time, update_time, version`

type scanner interface{ Scan(dest ...any) error }

func scanItem(row scanner) (Item, error) {
	var it Item
	var created, updated int64
	err := row.Scan(&it.ID, &it.ListID, &it.HouseholdID, &it.Name, &it.Quantity, &it.Unit,
		&it.Checked, &it.AddedBy, &created, &updated, &it.Version)
	if err != nil {
		return Item{}, err
	}
	it.CreateTime = time.Unix(0, created).UTC()
	it.UpdateTime = time.Unix(0, updated).UTC()
	return it, nil
}

// List returns every item of the household's list, oldest first, in one
// slice (at most the household cap's worth, unless the cap was lowered or
// removed); RPCs read pages with [Store.ListPage] instead. A household that
// never added an item has an empty list, not an error.
func (s *Store) List(ctx context.Context, householdID string) ([]Item, error) {
	if err := validateHousehold(householdID); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx,
		`SELECT `+itemColumns+` FROM items WHERE household_id = ? ORDER BY seq`, householdID)
	if err != nil {
		return nil, fmt.Errorf("shopping: list items: %w", err)
	}
	defer rows.Close()
	var items []Item
	for rows.Next() {
		it, err := scanItem(rows)
		if err != nil {
			return nil, fmt.Errorf("shopping: list items: %w", err)
		}
		items = append(items, it)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("shopping: list items: %w", err)
	}
	return items, nil
}

// Page sizes of [Store.ListPage].
const (
	// DefaultPageSize is the page size when the caller asks for none: above
	// what a real list holds, so that a client that does not page (older
	// ones) still sees a whole ordinary list; about 9 KB in protobuf with
	// everyday names.
	DefaultPageSize = 100
	// MaxPageSize is the largest page: larger requests get this many. About
	// 47 KB in protobuf (105 KB in JSON) with everyday names, 540 KB with
	// the longest, and one tenth of a full list at the default cap.
	MaxPageSize = 500
)

// Page is one page of a list.
type Page struct {
	// Items are the page's items, oldest first.
	Items []Item
	// NextPageToken reads the next page; empty on the last page.
	NextPageToken string
}

// ListPage returns up to pageSize items of the household's list, oldest
// first, starting after the position pageToken marks ("" for the first
// page). pageSize 0 means [DefaultPageSize]; above [MaxPageSize] it means
// MaxPageSize.
//
// Pages are read by position in the list's order, which never changes:
// an item that was on the list when the first page was read is on exactly
// one page unless it was removed before its page was read, and items added
// in the meantime come after every earlier item, so they appear on a later
// page and never push an item onto the next page twice.
//
// The token is opaque to callers: it is sealed with a key kept in the
// database and bound to the household, so it reveals nothing (not even how
// many items other households added) and cannot be forged or used for
// another household's list. A malformed, tampered or foreign token, or a
// negative pageSize, fails with [ErrInvalid].
func (s *Store) ListPage(ctx context.Context, householdID, pageToken string, pageSize int) (Page, error) {
	if err := validateHousehold(householdID); err != nil {
		return Page{}, err
	}
	switch {
	case pageSize < 0:
		return Page{}, fmt.Errorf("%w: page_size must not be negative, got %d", ErrInvalid, pageSize)
	case pageSize == 0:
		pageSize = DefaultPageSize
	case pageSize > MaxPageSize:
		pageSize = MaxPageSize
	}
	var after int64
	if pageToken != "" {
		var err error
		if after, err = s.pageTokens.open(householdID, pageToken); err != nil {
			return Page{}, fmt.Errorf("%w: page_token is not one this list issued (%v); start again without one", ErrInvalid, err)
		}
	}
	// One row more than the page says whether another page follows.
	rows, err := s.db.QueryContext(ctx,
		`SELECT seq, `+itemColumns+` FROM items WHERE household_id = ? AND seq > ? ORDER BY seq LIMIT ?`,
		householdID, after, pageSize+1)
	if err != nil {
		return Page{}, fmt.Errorf("shopping: list items: %w", err)
	}
	defer rows.Close()
	var page Page
	var last int64
	for rows.Next() {
		if len(page.Items) == pageSize {
			page.NextPageToken = s.pageTokens.seal(householdID, last)
			break
		}
		var seq int64
		it, err := scanItem(rowWithSeq{rows, &seq})
		if err != nil {
			return Page{}, fmt.Errorf("shopping: list items: %w", err)
		}
		page.Items = append(page.Items, it)
		last = seq
	}
	if err := rows.Err(); err != nil {
		return Page{}, fmt.Errorf("shopping: list items: %w", err)
	}
	return page, nil
}

// rowWithSeq scans the seq column that precedes [itemColumns] into seq.
type rowWithSeq struct {
	row scanner
	seq *int64
}

func (r rowWithSeq) Scan(dest ...any) error { return r.row.Scan(append([]any{r.seq}, dest...)...) }

// beforeCommit is called inside a write's transaction, after the change
// and before the commit, with the item as the change leaves it (for a
// removal: as it was). If it returns an error the transaction is rolled
// back and the write fails with that error (wrapped): nothing changed. If it
// succeeds the transaction is committed; should the commit fail, the write
// fails with the commit error although beforeCommit ran. The [Service] uses
// it to publish the change's event while the change can still be undone.
//
// It runs while the transaction holds SQLite's write lock, so it must be
// short and bounded: every other write waits for it.
type beforeCommit func(Item) error

// Add validates in, puts a new item on the household's list (creating the
// list on first use) and returns it as stored: normalized name and unit, a
// new id, version 1. It fails with [ErrInvalid] for bad input and with
// [ErrListFull] when the household already has as many items as the store's
// cap allows.
func (s *Store) Add(ctx context.Context, householdID, userID string, in NewItem) (Item, error) {
	return s.add(ctx, householdID, userID, in, nil)
}

// add is [Store.Add] with an optional hook; see [beforeCommit].
func (s *Store) add(ctx context.Context, householdID, userID string, in NewItem, hook beforeCommit) (Item, error) {
	if err := validateHousehold(householdID); err != nil {
		return Item{}, err
	}
	if userID == "" {
		return Item{}, fmt.Errorf("%w: user id is empty", ErrInvalid)
	}
	name, err := validateName(in.Name)
	if err != nil {
		return Item{}, err
	}
	unit, err := validateUnit(in.Unit)
	if err != nil {
		return Item{}, err
	}
	if err := validateQuantity(in.Quantity); err != nil {
		return Item{}, err
	}
	now := s.now().UTC()
	it := Item{
		ID:          NewItemID(),
		ListID:      ListID(householdID),
		HouseholdID: householdID,
		Name:        name,
		Quantity:    in.Quantity,
		Unit:        unit,
		AddedBy:     userID,
		CreateTime:  now,
		UpdateTime:  now,
		Version:     1,
	}
	// The list row and the item go in one transaction so an item never
	// points at a missing list.
	tx, done, err := s.beginWrite(ctx)
	if err != nil {
		return Item{}, fmt.Errorf("shopping: add item: %w", err)
	}
	defer done()
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO lists (id, household_id, create_time) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`,
		it.ListID, householdID, now.UnixNano()); err != nil {
		return Item{}, fmt.Errorf("shopping: add item: create list: %w", err)
	}
	if err := s.checkRoom(ctx, tx, householdID); err != nil {
		return Item{}, err
	}
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO items (`+itemColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		it.ID, it.ListID, it.HouseholdID, it.Name, it.Quantity, it.Unit, it.Checked, it.AddedBy,
		now.UnixNano(), now.UnixNano(), it.Version); err != nil {
		return Item{}, fmt.Errorf("shopping: add item: %w", err)
	}
	// Round-trip the times through the stored representation so the item
	// returned now (and handed to hook) equals the item List returns later.
	it.CreateTime = time.Unix(0, now.UnixNano()).UTC()
	it.UpdateTime = it.CreateTime
	if err := commit(tx, it, hook); err != nil {
		return Item{}, fmt.Errorf("shopping: add item: %w", err)
	}
	return it, nil
}

// checkRoom fails with [ErrListFull] when the household's list holds the
// cap's worth of items. It runs inside the add's transaction, which holds
// the write lock from BEGIN, so concurrent adds cannot both take the last
// place; the count is lists.item_count, which triggers keep (migration 2).
func (s *Store) checkRoom(ctx context.Context, tx *sql.Tx, householdID string) error {
	if s.maxItems == 0 {
		return nil
	}
	var n int
	if err := tx.QueryRowContext(ctx,
		`SELECT item_count FROM lists WHERE household_id = ?`, householdID).Scan(&n); err != nil {
		return fmt.Errorf("shopping: add item: count items: %w", err)
	}
	if n >= s.maxItems {
		return fmt.Errorf("%w: the list already holds %d items, the most a household may have (%d); remove some before adding more",
			ErrListFull, n, s.maxItems)
	}
	return nil
}

// commit runs hook (if any) and commits tx, or leaves tx for the caller's
// deferred Rollback when hook fails. A failed COMMIT can leave SQLite's
// transaction open (a deferred constraint, SQLITE_BUSY); the driver
// (modernc.org/sqlite, tx.Commit) rolls it back before returning, so the
// connection goes back to the pool clean and the change is gone.
func commit(tx *sql.Tx, it Item, hook beforeCommit) error {
	if hook != nil {
		if err := hook(it); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// Update sets the fields p sets on the household's item id, leaves the
// others, increments the version and sets the update time, and returns the
// item as stored. Setting a field to the value it already has still counts
// as a change. It fails with [ErrInvalid] for bad input or a patch that sets
// nothing, and with [ErrNotFound] when the household has no such item
// (including when the item belongs to another household).
func (s *Store) Update(ctx context.Context, householdID, itemID string, p Patch) (Item, error) {
	return s.update(ctx, householdID, itemID, p, nil)
}

// update is [Store.Update] with an optional hook; see [beforeCommit].
func (s *Store) update(ctx context.Context, householdID, itemID string, p Patch, hook beforeCommit) (Item, error) {
	if err := validateHousehold(householdID); err != nil {
		return Item{}, err
	}
	if err := ValidateItemID(itemID); err != nil {
		return Item{}, err
	}
	if p.empty() {
		return Item{}, fmt.Errorf("%w: the update sets no field (name, quantity, unit or checked)", ErrInvalid)
	}
	if p.Name != nil {
		name, err := validateName(*p.Name)
		if err != nil {
			return Item{}, err
		}
		p.Name = &name
	}
	if p.Unit != nil {
		unit, err := validateUnit(*p.Unit)
		if err != nil {
			return Item{}, err
		}
		p.Unit = &unit
	}
	if p.Quantity != nil {
		if err := validateQuantity(*p.Quantity); err != nil {
			return Item{}, err
		}
	}
	tx, done, err := s.beginWrite(ctx)
	if err != nil {
		return Item{}, fmt.Errorf("shopping: update item: %w", err)
	}
	defer done()
	// One statement reads, modifies and returns the row: a NULL parameter
	// (nil pointer) keeps the column. MAX keeps update_time from going
	// backwards if the wall clock does. The transaction is there for hook.
	row := tx.QueryRowContext(ctx, `UPDATE items SET
			name = COALESCE(?, name),
			quantity = COALESCE(?, quantity),
			unit = COALESCE(?, unit),
			checked = COALESCE(?, checked),
			version = version + 1,
			update_time = MAX(update_time, ?)
		WHERE household_id = ? AND id = ?
		RETURNING `+itemColumns,
		p.Name, p.Quantity, p.Unit, p.Checked, s.now().UnixNano(), householdID, itemID)
	it, err := scanItem(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Item{}, fmt.Errorf("%w: item %s", ErrNotFound, itemID)
	}
	if err != nil {
		return Item{}, fmt.Errorf("shopping: update item: %w", err)
	}
	if err := commit(tx, it, hook); err != nil {
		return Item{}, fmt.Errorf("shopping: update item: %w", err)
	}
	return it, nil
}

// Remove deletes the household's item id. It fails with [ErrInvalid] for a
// malformed id and with [ErrNotFound] when the household has no such item
// (including when it belongs to another household, or was already removed).
func (s *Store) Remove(ctx context.Context, householdID, itemID string) error {
	_, err := s.remove(ctx, householdID, itemID, nil)
	return err
}

// remove is [Store.Remove] with an optional hook; see [beforeCommit]. It
// returns the item as it was before the removal.
func (s *Store) remove(ctx context.Context, householdID, itemID string, hook beforeCommit) (Item, error) {
	if err := validateHousehold(householdID); err != nil {
		return Item{}, err
	}
	if err := ValidateItemID(itemID); err != nil {
		return Item{}, err
	}
	tx, done, err := s.beginWrite(ctx)
	if err != nil {
		return Item{}, fmt.Errorf("shopping: remove item: %w", err)
	}
	defer done()
	row := tx.QueryRowContext(ctx,
		`DELETE FROM items WHERE household_id = ? AND id = ? RETURNING `+itemColumns, householdID, itemID)
	it, err := scanItem(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Item{}, fmt.Errorf("%w: item %s", ErrNotFound, itemID)
	}
	if err != nil {
		return Item{}, fmt.Errorf("shopping: remove item: %w", err)
	}
	if err := commit(tx, it, hook); err != nil {
		return Item{}, fmt.Errorf("shopping: remove item: %w", err)
	}
	return it, nil
}

// itemIDPrefix marks item ids so that an id pasted into the wrong field is
// recognizable, and itemIDEncoding is lowercase base32 without padding: 16
// random bytes become 26 characters that are safe in URLs and logs.
const itemIDPrefix = "itm_"

var itemIDEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// itemIDLen is the length of an item id: the prefix and 26 characters.
const itemIDLen = len(itemIDPrefix) + 26

// NewItemID returns a new random item id: "itm_" and 128 random bits in
// lowercase base32. Random rather than sequential ids do not reveal how many
// items other households have.
func NewItemID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails; see crypto/rand.Read
	return itemIDPrefix + itemIDEncoding.EncodeToString(b[:])
}
