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
//
// A call whose context already holds a principal is not verified again:
// an HTTP middleware in front of the handlers (internal/server's gate)
// verifies the same header before Connect reads the request body, which
// for unary calls happens before any interceptor runs, and hands the
// principal on in the request's context.
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
	if _, ok := FromContext(ctx); ok {
		return ctx, nil
	}
	p, err := i.v.VerifyHeader(ctx, h)
	if err != nil {
		return ctx, ConnectError(err)
	}
	return WithPrincipal(ctx, p), nil
}

// VerifyHeader verifies the `Authorization: Bearer <credential>` of a
// request's header, as [Verifier.Verify] does the credential alone. A
// missing or non-Bearer header fails with [ErrMissingToken]; like every
// failure it is reported to [Config.OnFailure].
func (v *Verifier) VerifyHeader(ctx context.Context, h http.Header) (*Principal, error) {
	token, ok := BearerToken(h)
	if !ok {
		err := newError(ErrMissingToken, "", nil)
		v.failed(err)
		return nil, err
	}
	return v.Verify(ctx, token)
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
