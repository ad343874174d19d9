package server

import (
	"context"
	"errors"

	"connectrpc.com/connect"

	"github.com/honeydo/realtime/internal/broker"
)

// brokerError maps a broker error to the Connect error a client sees.
func brokerError(err error) *connect.Error {
	var ce *connect.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ce):
		return ce
	case errors.Is(err, broker.ErrInvalidCursor), errors.Is(err, broker.ErrInvalidEvent):
		return connect.NewError(connect.CodeInvalidArgument, err)
	case errors.Is(err, broker.ErrSlowConsumer):
		return connect.NewError(connect.CodeResourceExhausted, errors.New("slow consumer: the stream fell too far behind and was closed; reconnect with your cursor to resume"))
	case errors.Is(err, broker.ErrClosed):
		return connect.NewError(connect.CodeUnavailable, errors.New("server is shutting down; reconnect with your cursor"))
	case errors.Is(err, broker.ErrUnavailable):
		return connect.NewError(connect.CodeUnavailable, err)
	case errors.Is(err, context.Canceled):
		return connect.NewError(connect.CodeCanceled, err)
	case errors.Is(err, context.DeadlineExceeded):
		return connect.NewError(connect.CodeDeadlineExceeded, err)
	}
	return connect.NewError(connect.CodeInternal, err)
}
