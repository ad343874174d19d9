// Package rpcerr is the one place where the errors of this repository
// become the Connect errors clients see. The server's handlers and every
// module call [Error]; nobody else classifies auth, broker or context
// errors, so a broker error means the same code wherever it surfaces.
//
// The cases, in the order they are tried:
//
//   - a [*connect.Error] is returned as it is (a handler already decided);
//   - the module's own [Rule]s (its domain sentinels: "not found",
//     "invalid", …), so that a store that knows nothing of Connect gets its
//     codes from one small table in the module;
//   - auth errors take the code of auth's error table ([auth.Code]);
//   - a [*PublishError] (an event a server-side handler built could not be
//     published) is Unavailable when retrying can help (backend
//     unreachable, broker shut down, no answer in time) and Internal
//     otherwise: the event was the server's, so the caller is not to blame;
//   - broker errors of a subscription: an invalid cursor or event is
//     InvalidArgument, a slow consumer ResourceExhausted, a closed broker or
//     an unreachable backend Unavailable;
//   - a cancelled or expired request keeps its own code;
//   - anything else is Internal with a generic message, so that storage
//     details and host names never reach clients: log the original.
package rpcerr

import (
	"context"
	"errors"

	"connectrpc.com/connect"

	"github.com/honeydo/realtime/internal/auth"
	"github.com/honeydo/realtime/internal/broker"
)

// Rule maps a module's sentinel error (tested with [errors.Is]) to a code.
// The Connect error keeps the module error's message, which must be safe to
// show to the caller.
type Rule struct {
	// Err is the sentinel.
	Err error
	// Code is what a client sees for any error wrapping Err.
	Code connect.Code
}

// internalMessage is what a client reads for an unexpected failure.
const internalMessage = "internal error"

// Error returns err as the Connect error a client should see, trying
// rules before the shared cases (see the package doc). nil stays nil.
func Error(err error, rules ...Rule) *connect.Error {
	if err == nil {
		return nil
	}
	if ce, ok := errors.AsType[*connect.Error](err); ok {
		return ce
	}
	for _, r := range rules {
		if errors.Is(err, r.Err) {
			return connect.NewError(r.Code, err)
		}
	}
	if auth.IsAuthError(err) {
		return auth.ConnectError(err)
	}
	if pe, ok := errors.AsType[*PublishError](err); ok {
		switch {
		case pe.Retryable():
			return connect.NewError(connect.CodeUnavailable, err)
		case errors.Is(err, context.Canceled):
			return connect.NewError(connect.CodeCanceled, err)
		}
		return connect.NewError(connect.CodeInternal, errors.New(internalMessage))
	}
	switch {
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
	return connect.NewError(connect.CodeInternal, errors.New(internalMessage))
}

// PublishError is an event that a server-side handler built and could not
// publish. The emitter that modules use returns every failure wrapped in
// one, so that [Error] can tell "your call failed because our backend is
// down" (Unavailable, retry) from a subscription's own broker errors.
type PublishError struct {
	// Err is the broker's error.
	Err error
}

// Error says that the event could not be published, and why.
func (e *PublishError) Error() string { return "the event could not be published: " + e.Err.Error() }

// Unwrap returns the broker's error.
func (e *PublishError) Unwrap() error { return e.Err }

// Retryable reports whether the broker failed for a reason that goes away
// (backend unreachable, broker closed for a restart, no answer within the
// publish's deadline), as opposed to refusing the event (a bug in the
// handler that built it).
func (e *PublishError) Retryable() bool {
	return errors.Is(e.Err, broker.ErrUnavailable) || errors.Is(e.Err, broker.ErrClosed) ||
		errors.Is(e.Err, context.DeadlineExceeded)
}
