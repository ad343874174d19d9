package client

import (
	"context"
	"errors"
	"fmt"

	"connectrpc.com/connect"
)

// BearerToken returns a client option that sends `Authorization: Bearer
// token` with every call, unary and streaming. For credentials that expire
// (Clerk session tokens) use [TokenInterceptor] instead.
func BearerToken(token string) connect.ClientOption {
	return connect.WithInterceptors(TokenInterceptor(func(context.Context) (string, error) { return token, nil }))
}

// TokenInterceptor returns a client interceptor that calls token before
// every call and sends the result as `Authorization: Bearer <token>`. When
// token fails, a unary call fails with its error (as Unauthenticated unless
// it already is a [*connect.Error]); a stream fails on its first Send or
// Receive. token may be called concurrently by concurrent calls.
func TokenInterceptor(token func(ctx context.Context) (string, error)) connect.Interceptor {
	return tokenInterceptor(token)
}

type tokenInterceptor func(ctx context.Context) (string, error)

func (f tokenInterceptor) get(ctx context.Context) (string, error) {
	tok, err := f(ctx)
	if err != nil {
		var ce *connect.Error
		if errors.As(err, &ce) {
			return "", err
		}
		return "", connect.NewError(connect.CodeUnauthenticated, fmt.Errorf("getting a token: %w", err))
	}
	return tok, nil
}

func (f tokenInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if !req.Spec().IsClient {
			return next(ctx, req)
		}
		tok, err := f.get(ctx)
		if err != nil {
			return nil, err
		}
		req.Header().Set("Authorization", "Bearer "+tok)
		return next(ctx, req)
	}
}

func (f tokenInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		tok, err := f.get(ctx)
		if err != nil {
			return failedConn{conn, err}
		}
		conn.RequestHeader().Set("Authorization", "Bearer "+tok)
		return conn
	}
}

func (tokenInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

// failedConn is a stream that fails before anything is sent: the wrapped
// connection never starts its HTTP request, so closing it is a no-op.
type failedConn struct {
	connect.StreamingClientConn
	err error
}

func (c failedConn) Send(any) error       { return c.err }
func (c failedConn) Receive(any) error    { return c.err }
func (c failedConn) CloseRequest() error  { return nil }
func (c failedConn) CloseResponse() error { return nil }
