package shopping

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	shoppingv1 "github.com/honeydo/realtime/gen/honeydo/shopping/v1"
	"github.com/honeydo/realtime/gen/honeydo/shopping/v1/shoppingv1connect"
	"github.com/honeydo/realtime/internal/auth"
	"github.com/honeydo/realtime/internal/module"
	"github.com/honeydo/realtime/internal/rpcerr"
)

// Service implements [shoppingv1connect.ShoppingServiceHandler] over a
// [Store], emitting an event for every change. It is safe for concurrent
// use.
type Service struct {
	store  *Store
	emit   *module.Emitter
	logger *slog.Logger
}

var _ shoppingv1connect.ShoppingServiceHandler = (*Service)(nil)

// publishTimeout bounds how long a mutation waits for the broker to accept
// its event. The publish runs while the write holds SQLite's write lock, so
// it bounds how long other writes can be held up; it also matches the
// store's busy timeout, so that a write queued behind a stalled publish
// gives up at about the time the stalled one does.
const publishTimeout = 5 * time.Second

// NewService returns a Service that stores items in store and announces
// changes through emit. store and emit must not be nil; a nil logger
// discards logs.
func NewService(store *Store, emit *module.Emitter, logger *slog.Logger) *Service {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Service{store: store, emit: emit, logger: logger}
}

// ListItems implements [shoppingv1connect.ShoppingServiceHandler]. It
// returns one page (see [Store.ListPage] for sizes and the order); a
// request without page_size gets [DefaultPageSize] items and a
// next_page_token when more follow.
func (s *Service) ListItems(ctx context.Context, req *connect.Request[shoppingv1.ListItemsRequest]) (*connect.Response[shoppingv1.ListItemsResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	page, err := s.store.ListPage(ctx, p.HouseholdID, req.Msg.GetPageToken(), int(req.Msg.GetPageSize()))
	if err != nil {
		return nil, s.fail(ctx, "ListItems", p, err)
	}
	res := &shoppingv1.ListItemsResponse{
		ListId:        ListID(p.HouseholdID),
		Items:         make([]*shoppingv1.ShoppingItem, len(page.Items)),
		NextPageToken: page.NextPageToken,
	}
	for i, it := range page.Items {
		res.Items[i] = toProto(it)
	}
	return connect.NewResponse(res), nil
}

// AddItem implements [shoppingv1connect.ShoppingServiceHandler]. It emits
// ItemAdded to the household; the calling client skips it by its origin.
func (s *Service) AddItem(ctx context.Context, req *connect.Request[shoppingv1.AddItemRequest]) (*connect.Response[shoppingv1.AddItemResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	it, err := s.mutate(ctx, "AddItem", p, func(ctx context.Context, hook beforeCommit) (Item, error) {
		return s.store.add(ctx, p.HouseholdID, p.UserID, NewItem{
			Name:     req.Msg.GetName(),
			Quantity: req.Msg.GetQuantity(),
			Unit:     req.Msg.GetUnit(),
		}, hook)
	}, func(it Item) *realtimev1.Event {
		return &realtimev1.Event{Payload: &realtimev1.Event_ItemAdded{ItemAdded: &shoppingv1.ItemAdded{Item: toProto(it)}}}
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&shoppingv1.AddItemResponse{Item: toProto(it)}), nil
}

// UpdateItem implements [shoppingv1connect.ShoppingServiceHandler]. It
// emits ItemUpdated to the household; the calling client skips it by its
// origin.
func (s *Service) UpdateItem(ctx context.Context, req *connect.Request[shoppingv1.UpdateItemRequest]) (*connect.Response[shoppingv1.UpdateItemResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	// The optional fields arrive as pointers: nil means "leave it", which is
	// exactly what Patch means.
	patch := Patch{
		Name:     req.Msg.Name,
		Quantity: req.Msg.Quantity,
		Unit:     req.Msg.Unit,
		Checked:  req.Msg.Checked,
	}
	it, err := s.mutate(ctx, "UpdateItem", p, func(ctx context.Context, hook beforeCommit) (Item, error) {
		return s.store.update(ctx, p.HouseholdID, req.Msg.GetItemId(), patch, hook)
	}, func(it Item) *realtimev1.Event {
		return &realtimev1.Event{Payload: &realtimev1.Event_ItemUpdated{ItemUpdated: &shoppingv1.ItemUpdated{Item: toProto(it)}}}
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&shoppingv1.UpdateItemResponse{Item: toProto(it)}), nil
}

// RemoveItem implements [shoppingv1connect.ShoppingServiceHandler]. It
// emits ItemRemoved to the household; the calling client skips it by its
// origin.
func (s *Service) RemoveItem(ctx context.Context, req *connect.Request[shoppingv1.RemoveItemRequest]) (*connect.Response[shoppingv1.RemoveItemResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	_, err = s.mutate(ctx, "RemoveItem", p, func(ctx context.Context, hook beforeCommit) (Item, error) {
		return s.store.remove(ctx, p.HouseholdID, req.Msg.GetItemId(), hook)
	}, func(it Item) *realtimev1.Event {
		return &realtimev1.Event{Payload: &realtimev1.Event_ItemRemoved{ItemRemoved: &shoppingv1.ItemRemoved{
			ListId: it.ListID,
			ItemId: it.ID,
		}}}
	})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&shoppingv1.RemoveItemResponse{}), nil
}

// caller returns the person the auth interceptor verified. The shopping
// list belongs to a household, so a caller without one (a backend service
// credential) may not use it.
func caller(ctx context.Context) (*auth.Principal, error) {
	p, err := auth.RequireUser(ctx)
	if err != nil {
		return nil, err
	}
	if p.HouseholdID == "" {
		return nil, connect.NewError(connect.CodePermissionDenied,
			errors.New("shopping: the shopping list needs a household member's session"))
	}
	return p, nil
}

// mutate performs one write and publishes its event so that the two stand
// or fall together, as far as two systems allow (the package doc says why
// this order):
//
//  1. write runs the change in a SQLite transaction (which holds the
//     database's write lock from BEGIN) and calls the hook it is given
//     before committing;
//  2. the hook publishes event(item) to p's household, tagged with the
//     calling client's origin (which skips it), and returns
//     once the broker accepted it (JetStream's PubAck, the memory broker's
//     append);
//  3. only then does the transaction commit.
//
// A failed publish rolls the change back and the call fails with
// Unavailable: nothing changed, so the caller may simply retry.
//
// The write runs detached from the caller's cancellation: database/sql
// rolls a transaction back when its context ends, and a caller hanging up
// between the publish and the commit would otherwise leave an event for a
// change that never happened. The publish is bounded by [publishTimeout]
// instead; it is the only network call made under the write lock.
func (s *Service) mutate(ctx context.Context, op string, p *auth.Principal,
	write func(context.Context, beforeCommit) (Item, error),
	event func(Item) *realtimev1.Event,
) (Item, error) {
	// A caller that is already gone gets nothing done.
	if err := ctx.Err(); err != nil {
		return Item{}, toConnectError(err)
	}
	wctx := context.WithoutCancel(ctx)
	var published *module.Sent
	var ev *realtimev1.Event
	it, err := write(wctx, func(it Item) error {
		ev = event(it)
		ev.SenderUserId = p.UserID
		pctx, cancel := context.WithTimeout(wctx, publishTimeout)
		defer cancel()
		// Inside the transaction, which holds the store's one write slot:
		// waiting here for a stream behind would hold up every household.
		sent, err := s.emit.ToOthers(pctx, p.HouseholdID, ev, module.WithoutWaiting())
		if err != nil {
			return &publishError{err: err}
		}
		published = &sent
		return nil
	})
	switch {
	case err == nil:
		return it, nil
	case published != nil:
		// The event is out but the commit failed (disk full, I/O error):
		// the event describes a change that did not persist. Very rare, and
		// an event cannot be recalled. Clients converge because the next
		// ListItems (every resync refetches it) is the truth, and item
		// versions reconcile: a phantom update carries version N+1 that was
		// never stored, and the item's next real updates carry N+1, N+2, …
		// The caller gets an error, so it does not assume the change. The
		// same holds for the rarer JetStream Unavailable whose ack was lost
		// after the event was stored (then the write was rolled back).
		s.logger.LogAttrs(ctx, slog.LevelError, "shopping: "+op+": commit failed after the event was published; the event describes a change that did not persist",
			slog.String("household", p.HouseholdID),
			slog.String("user", p.UserID),
			slog.String("event", eventKind(ev)),
			slog.String("event_id", published.ID),
			slog.String("cursor", published.Cursor),
			slog.Any("error", err))
		return Item{}, connect.NewError(connect.CodeInternal, errors.New("shopping: internal error"))
	}
	var perr *publishError
	if errors.As(err, &perr) {
		s.logger.LogAttrs(ctx, slog.LevelWarn, "shopping: "+op+" rolled back: its event could not be published",
			slog.String("household", p.HouseholdID),
			slog.String("user", p.UserID),
			slog.String("event", eventKind(ev)),
			slog.Any("error", perr.err))
	}
	return Item{}, s.fail(ctx, op, p, err)
}

// publishError is a publish that failed inside a write's transaction; the
// write was rolled back. It wraps the emitter's [*rpcerr.PublishError],
// which decides the code; this type only says that nothing changed.
type publishError struct{ err error }

func (e *publishError) Error() string {
	return "shopping: " + e.err.Error() + "; nothing was changed; retry"
}

func (e *publishError) Unwrap() error { return e.err }

// eventKind names ev's payload for logs.
func eventKind(ev *realtimev1.Event) string {
	switch ev.Payload.(type) {
	case *realtimev1.Event_ItemAdded:
		return "item_added"
	case *realtimev1.Event_ItemUpdated:
		return "item_updated"
	case *realtimev1.Event_ItemRemoved:
		return "item_removed"
	}
	return "other"
}

// fail logs err when it is not the caller's fault and returns it as a
// Connect error.
func (s *Service) fail(ctx context.Context, op string, p *auth.Principal, err error) error {
	cerr := toConnectError(err)
	if cerr.Code() == connect.CodeInternal {
		s.logger.LogAttrs(ctx, slog.LevelError, "shopping: "+op+" failed",
			slog.String("household", p.HouseholdID),
			slog.String("user", p.UserID),
			slog.Any("error", err))
	}
	return cerr
}

// errorRules map the store's sentinels to their codes, with the domain
// message (which names the field and the reason): [ErrInvalid] →
// InvalidArgument, [ErrNotFound] → NotFound, [ErrListFull] →
// FailedPrecondition, [errBusy] → Unavailable. A full list is
// FailedPrecondition rather than ResourceExhausted because retrying cannot
// help until someone removes items, while clients (this repository's among
// them) treat ResourceExhausted, which the rate limit returns, as "back off
// and retry". Everything else (a failed publish, a cancelled call, a
// storage failure) is mapped by rpcerr, the one home of those cases.
var errorRules = []rpcerr.Rule{
	{Err: ErrInvalid, Code: connect.CodeInvalidArgument},
	{Err: ErrNotFound, Code: connect.CodeNotFound},
	{Err: ErrListFull, Code: connect.CodeFailedPrecondition},
	{Err: errBusy, Code: connect.CodeUnavailable},
}

// errBusy replaces an error of a write that found the database locked for
// longer than the busy timeout: nothing changed, so a retry is safe.
var errBusy = errors.New("shopping: the shopping list is busy, nothing was changed; retry")

// toConnectError maps an error of the store or of a publish to the Connect
// error the caller sees ([errorRules], then rpcerr.Error).
func toConnectError(err error) *connect.Error {
	if isBusy(err) {
		err = errBusy
	}
	return rpcerr.Error(err, errorRules...)
}

// toProto converts a stored item to its wire form. Each call returns a new
// message: the one inside a published event belongs to the broker and must
// not be shared with a response.
func toProto(it Item) *shoppingv1.ShoppingItem {
	return &shoppingv1.ShoppingItem{
		Id:            it.ID,
		ListId:        it.ListID,
		Name:          it.Name,
		Quantity:      it.Quantity,
		Unit:          it.Unit,
		Checked:       it.Checked,
		AddedByUserId: it.AddedBy,
		CreateTime:    timestamppb.New(it.CreateTime),
		UpdateTime:    timestamppb.New(it.UpdateTime),
		Version:       it.Version,
	}
}
