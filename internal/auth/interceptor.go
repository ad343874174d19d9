package auth

import (
	"context"
	"net/http"
	"strings"

	"connectrpc.com/connect"
)

// NewInterceptor returns the server interceptor that authenticates every
// call, unary and streaming: it reads `Authorization: Bearer <credential>`,
// verifies it with v and puts the [Principal] into the handler's context
// ([FromContext]). A missing or non-Bearer header fails with
// Unauthenticated "missing bearer token"; verification failures carry the
// code from [Code]. Streams are checked once, when they open; ending them at
// the token's expiry ([Principal.Expiry]) is the handler's job. On the
// client side (unary client calls, streaming clients) it does nothing.
func NewInterceptor(v *Verifier) connect.Interceptor {
	return &interceptor{v: v}
}

type interceptor struct{ v *Verifier }

func (i *interceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient {
			return next(ctx, req)
		}
		ctx, err := i.authenticate(ctx, req.Header())
		if err != nil {
			return nil, err
		}
		return next(ctx, req)
	}
}

func (i *interceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (i *interceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		ctx, err := i.authenticate(ctx, conn.RequestHeader())
		if err != nil {
			return err
		}
		return next(ctx, conn)
	}
}

func (i *interceptor) authenticate(ctx context.Context, h http.Header) (context.Context, error) {
	token, ok := BearerToken(h)
	if !ok {
		err := newError(ErrMissingToken, "", nil)
		i.v.failed(err)
		return ctx, ConnectError(err)
	}
	p, err := i.v.Verify(ctx, token)
	if err != nil {
		return ctx, ConnectError(err)
	}
	return WithPrincipal(ctx, p), nil
}

// BearerToken returns the credential of an `Authorization: Bearer …`
// header. The scheme is case-insensitive (RFC 9110) and surrounding spaces
// are ignored; ok is false when there is no such header or no credential.
func BearerToken(h http.Header) (token string, ok bool) {
	scheme, token, found := strings.Cut(strings.TrimSpace(h.Get("Authorization")), " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}
