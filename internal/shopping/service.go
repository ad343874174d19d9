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
	"github.com/honeydo/realtime/internal/broker"
)

// Service implements [shoppingv1connect.ShoppingServiceHandler] over a
// [Store], emitting an event for every change. It is safe for concurrent
// use.
type Service struct {
	store  *Store
	emit   *broker.Emitter
	logger *slog.Logger
}

var _ shoppingv1connect.ShoppingServiceHandler = (*Service)(nil)

// emitTimeout bounds how long a mutation waits to hand its event to the
// broker once the write has committed.
const emitTimeout = 5 * time.Second

// NewService returns a Service that stores items in store and announces
// changes through emit. store and emit must not be nil; a nil logger
// discards logs.
func NewService(store *Store, emit *broker.Emitter, logger *slog.Logger) *Service {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Service{store: store, emit: emit, logger: logger}
}

// ListItems implements [shoppingv1connect.ShoppingServiceHandler].
func (s *Service) ListItems(ctx context.Context, _ *connect.Request[shoppingv1.ListItemsRequest]) (*connect.Response[shoppingv1.ListItemsResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	items, err := s.store.List(ctx, p.HouseholdID)
	if err != nil {
		return nil, s.fail(ctx, "ListItems", p, err)
	}
	res := &shoppingv1.ListItemsResponse{
		ListId: ListID(p.HouseholdID),
		Items:  make([]*shoppingv1.ShoppingItem, len(items)),
	}
	for i, it := range items {
		res.Items[i] = toProto(it)
	}
	return connect.NewResponse(res), nil
}

// AddItem implements [shoppingv1connect.ShoppingServiceHandler]. It emits
// ItemAdded to the rest of the household.
func (s *Service) AddItem(ctx context.Context, req *connect.Request[shoppingv1.AddItemRequest]) (*connect.Response[shoppingv1.AddItemResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	it, err := s.store.Add(ctx, p.HouseholdID, p.UserID, NewItem{
		Name:     req.Msg.GetName(),
		Quantity: req.Msg.GetQuantity(),
		Unit:     req.Msg.GetUnit(),
	})
	if err != nil {
		return nil, s.fail(ctx, "AddItem", p, err)
	}
	s.emitToOthers(ctx, p, &realtimev1.Event{
		Payload: &realtimev1.Event_ItemAdded{ItemAdded: &shoppingv1.ItemAdded{Item: toProto(it)}},
	})
	return connect.NewResponse(&shoppingv1.AddItemResponse{Item: toProto(it)}), nil
}

// UpdateItem implements [shoppingv1connect.ShoppingServiceHandler]. It
// emits ItemUpdated to the rest of the household.
func (s *Service) UpdateItem(ctx context.Context, req *connect.Request[shoppingv1.UpdateItemRequest]) (*connect.Response[shoppingv1.UpdateItemResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	// The optional fields arrive as pointers: nil means "leave it", which is
	// exactly what Patch means.
	it, err := s.store.Update(ctx, p.HouseholdID, req.Msg.GetItemId(), Patch{
		Name:     req.Msg.Name,
		Quantity: req.Msg.Quantity,
		Unit:     req.Msg.Unit,
		Checked:  req.Msg.Checked,
	})
	if err != nil {
		return nil, s.fail(ctx, "UpdateItem", p, err)
	}
	s.emitToOthers(ctx, p, &realtimev1.Event{
		Payload: &realtimev1.Event_ItemUpdated{ItemUpdated: &shoppingv1.ItemUpdated{Item: toProto(it)}},
	})
	return connect.NewResponse(&shoppingv1.UpdateItemResponse{Item: toProto(it)}), nil
}

// RemoveItem implements [shoppingv1connect.ShoppingServiceHandler]. It
// emits ItemRemoved to the rest of the household.
func (s *Service) RemoveItem(ctx context.Context, req *connect.Request[shoppingv1.RemoveItemRequest]) (*connect.Response[shoppingv1.RemoveItemResponse], error) {
	p, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	id := req.Msg.GetItemId()
	if err := s.store.Remove(ctx, p.HouseholdID, id); err != nil {
		return nil, s.fail(ctx, "RemoveItem", p, err)
	}
	s.emitToOthers(ctx, p, &realtimev1.Event{
		Payload: &realtimev1.Event_ItemRemoved{ItemRemoved: &shoppingv1.ItemRemoved{
			ListId: ListID(p.HouseholdID),
			ItemId: id,
		}},
	})
	return connect.NewResponse(&shoppingv1.RemoveItemResponse{}), nil
}

// caller returns the principal the auth interceptor verified. The shopping
// list belongs to a household, so a caller without one (a backend service
// credential) may not use it.
func caller(ctx context.Context) (*auth.Principal, error) {
	p, ok := auth.FromContext(ctx)
	if !ok {
		return nil, connect.NewError(connect.CodeUnauthenticated, errors.New("shopping: no authenticated caller"))
	}
	if p.Service || p.HouseholdID == "" {
		return nil, connect.NewError(connect.CodePermissionDenied,
			errors.New("shopping: the shopping list needs a household member's session, not a service credential"))
	}
	return p, nil
}

// emitToOthers sends ev, from p, to p's household except p. It is called
// only after the write committed, so that nobody hears of a change that did
// not happen.
//
// A failure here is logged, not returned: the write is durable, and
// reporting an error would make the actor retry a change that succeeded
// (adding a duplicate item). The other members miss one live event; their
// clients recover through a resync (a resume that the broker cannot serve
// says so in its welcome frame, and the app refetches the list).
//
// The emit is detached from the request's cancellation: once the write has
// committed, the caller hanging up must not swallow the event.
func (s *Service) emitToOthers(ctx context.Context, p *auth.Principal, ev *realtimev1.Event) {
	ev.SenderUserId = p.UserID
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), emitTimeout)
	defer cancel()
	if _, err := s.emit.ToOthers(ctx, p.HouseholdID, p.UserID, ev); err != nil {
		s.logger.LogAttrs(ctx, slog.LevelError, "shopping: event not emitted after a committed write; other members resync",
			slog.String("household", p.HouseholdID),
			slog.String("user", p.UserID),
			slog.String("event", eventKind(ev)),
			slog.Any("error", err))
	}
}

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

// toConnectError maps a domain error to its Connect code: [ErrInvalid] →
// InvalidArgument and [ErrNotFound] → NotFound, with the domain message
// (which names the field and the reason); a cancelled or expired request
// keeps its own code; anything else is Internal with a generic message, so
// that storage details never reach clients (fail logs them).
func toConnectError(err error) *connect.Error {
	var cerr *connect.Error
	switch {
	case errors.As(err, &cerr):
		return cerr
	case errors.Is(err, ErrInvalid):
		return connect.NewError(connect.CodeInvalidArgument, err)
	case errors.Is(err, ErrNotFound):
		return connect.NewError(connect.CodeNotFound, err)
	case errors.Is(err, context.Canceled):
		return connect.NewError(connect.CodeCanceled, err)
	case errors.Is(err, context.DeadlineExceeded):
		return connect.NewError(connect.CodeDeadlineExceeded, err)
	}
	return connect.NewError(connect.CodeInternal, errors.New("shopping: internal error"))
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
