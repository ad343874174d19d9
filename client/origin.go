package client

import (
	"context"
	"crypto/rand"
	"encoding/base64"

	"connectrpc.com/connect"

	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
)

// OriginHeader carries a client's origin on its calls. The server copies it
// into the events those calls cause (Event.origin): the client that acted
// skips them, every other stream, the same user's other devices included,
// handles them.
const OriginHeader = "Realtime-Origin"

// NewOrigin returns a random origin id for one client (one process, one
// device): 22 URL-safe characters.
func NewOrigin() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// WithOrigin returns a client option that sends origin in the
// Realtime-Origin header of every unary call, for the clients of modules'
// services (for example the shopping client) whose changes this client's
// subscriber should skip; pass the same origin as [Options.Origin].
func WithOrigin(origin string) connect.ClientOption {
	return connect.WithInterceptors(originInterceptor(origin))
}

type originInterceptor string

func (o originInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient && o != "" {
			req.Header().Set(OriginHeader, string(o))
		}
		return next(ctx, req)
	}
}

func (originInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (originInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

// ownEvent reports whether ev was caused by a call of this client: its
// origin is origin and its sender is the stream's user. Checking the sender
// too means another user who learned this client's origin (it travels with
// every event the client causes) cannot make it skip their changes.
func ownEvent(ev *realtimev1.Event, origin, userID string) bool {
	return origin != "" && ev.GetOrigin() == origin && ev.GetSenderUserId() == userID
}
