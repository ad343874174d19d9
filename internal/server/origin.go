package server

import (
	"context"
	"errors"
	"net/http"

	"connectrpc.com/connect"

	"github.com/honeydo/realtime/internal/broker"
)

// OriginHeader carries the calling client's origin: an opaque id the client
// picks (one per browser tab, one per Go client) and sends with every call.
// Events the call causes carry it in Event.origin, so that this client can
// skip them while every other stream, the same user's other devices
// included, applies them.
const OriginHeader = "Realtime-Origin"

// originInterceptor puts the Realtime-Origin header of each call into the
// handler's context ([broker.WithOrigin]), where the module emitter's
// ToOthers (module.Emitter) finds it. A malformed header fails the call
// with InvalidArgument rather than being dropped, since a client whose
// origin went missing would apply its own changes twice.
type originInterceptor struct{}

func (originInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient {
			return next(ctx, req)
		}
		ctx, err := withOrigin(ctx, req.Header())
		if err != nil {
			return nil, err
		}
		return next(ctx, req)
	}
}

func (originInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (originInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		ctx, err := withOrigin(ctx, conn.RequestHeader())
		if err != nil {
			return err
		}
		return next(ctx, conn)
	}
}

func withOrigin(ctx context.Context, h http.Header) (context.Context, error) {
	origin := h.Get(OriginHeader)
	if origin == "" {
		return ctx, nil
	}
	if !broker.ValidOrigin(origin) {
		return ctx, connect.NewError(connect.CodeInvalidArgument,
			errors.New(OriginHeader+" header must be 1-128 characters of [A-Za-z0-9._:~-]"))
	}
	return broker.WithOrigin(ctx, origin), nil
}
