package server

import (
	"context"
	"errors"
	"time"

	"connectrpc.com/connect"
)

// The defaults of [Config.MaxHealthWatches] and [Config.HealthWatchLifetime].
const (
	DefaultMaxHealthWatches    = 64
	DefaultHealthWatchLifetime = 5 * time.Minute
)

var (
	errTooManyWatches = errors.New("too many health watches open on this server; use Check, or watch again later")
	errWatchLifetime  = errors.New("health watch reached its maximum lifetime; watch again")
)

// watchLimiter bounds grpc.health.v1.Health/Watch, the one public call
// that lives on after its request: anyone may open one without a
// credential, so the number open on the server is capped (the excess is
// refused with RESOURCE_EXHAUSTED before its request is read) and each
// ends with UNAVAILABLE after a lifetime, so that a slot held by an
// attacker comes back and an honest watcher simply watches again, as gRPC
// health clients do after any end. Check is unary and cheap, and is not
// limited. Negative max or lifetime means unlimited.
type watchLimiter struct {
	slots    chan struct{} // nil: unlimited
	lifetime time.Duration
}

var _ connect.Interceptor = (*watchLimiter)(nil)

func newWatchLimiter(max int, lifetime time.Duration) *watchLimiter {
	w := &watchLimiter{lifetime: lifetime}
	if max >= 0 {
		w.slots = make(chan struct{}, max)
	}
	return w
}

func (w *watchLimiter) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc { return next }

func (w *watchLimiter) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (w *watchLimiter) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		if w.slots != nil {
			select {
			case w.slots <- struct{}{}:
				defer func() { <-w.slots }()
			default:
				return connect.NewError(connect.CodeResourceExhausted, errTooManyWatches)
			}
		}
		if w.lifetime <= 0 {
			return next(ctx, conn)
		}
		ctx, cancel := context.WithTimeoutCause(ctx, w.lifetime, errWatchLifetime)
		defer cancel()
		err := next(ctx, conn)
		// The health handler ends a watch whose context is done without
		// an error; tell the client why, and that it may come back.
		if err == nil && errors.Is(context.Cause(ctx), errWatchLifetime) {
			return connect.NewError(connect.CodeUnavailable, errWatchLifetime)
		}
		return err
	}
}
