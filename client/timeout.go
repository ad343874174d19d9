package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"connectrpc.com/connect"

	"github.com/honeydo/realtime/client/internal/reconnect"
)

// defaultCallTimeout bounds a unary call whose context has no deadline:
// a frozen server or a dead network path would otherwise keep the caller
// waiting until TCP gives up, minutes later.
const defaultCallTimeout = reconnect.CallTimeout

// CallTimeoutInterceptor returns a client interceptor that gives every
// unary call whose context has no deadline one of d, and reports a call
// that runs out of it as DeadlineExceeded with a message that says so.
// Streams are left alone: [Subscribe] watches them with its watchdog.
// d ≤ 0 returns an interceptor that does nothing.
func CallTimeoutInterceptor(d time.Duration) connect.Interceptor {
	return callTimeout(d)
}

type callTimeout time.Duration

func (d callTimeout) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if d <= 0 || !req.Spec().IsClient {
			return next(ctx, req)
		}
		if _, ok := ctx.Deadline(); ok {
			return next(ctx, req)
		}
		cctx, cancel := context.WithTimeout(ctx, time.Duration(d))
		defer cancel()
		res, err := next(cctx, req)
		if err != nil && ctx.Err() == nil && errors.Is(cctx.Err(), context.DeadlineExceeded) {
			return nil, connect.NewError(connect.CodeDeadlineExceeded,
				fmt.Errorf("%s: no answer from the server within %v", req.Spec().Procedure, time.Duration(d)))
		}
		return res, err
	}
}

func (callTimeout) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (callTimeout) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}
