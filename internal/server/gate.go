package server

import (
	"context"
	"net/http"
	"time"

	"connectrpc.com/connect"

	"github.com/honeydo/realtime/internal/auth"
	"github.com/honeydo/realtime/internal/rpcerr"
)

// gate stands in front of the Connect handlers of every procedure that
// needs a credential. Connect reads a unary call's request message before
// any interceptor runs, so without the gate a caller with no credential
// could hold a goroutine by sending its body one byte at a time. The gate
// verifies the Authorization header first and refuses a bad one without
// reading the body; the auth interceptor then finds the principal in the
// context and does not verify it again.
type gate struct {
	verifier *auth.Verifier
	errors   *connect.ErrorWriter
	// refused, when set, records a refused call: no interceptor sees it.
	refused func(path string, err error, took time.Duration)
}

func (g *gate) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		conn := connFrom(r.Context())
		p, err := g.verify(r.Context(), r.Header)
		if err != nil {
			cerr := rpcerr.Error(err)
			g.refuse(w, r, conn, cerr)
			if g.refused != nil {
				g.refused(r.URL.Path, cerr, time.Since(start))
			}
			return
		}
		conn.markAuthenticated()
		ctx := auth.WithPrincipal(r.Context(), p)
		ctx = context.WithValue(ctx, callKey{}, &call{
			ResponseController: *http.NewResponseController(w),
			multiplexed:        r.ProtoMajor >= 2,
		})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// verify checks the credential in h off the handler's stack ([offStack]):
// an RS256 verification grows a goroutine to 16 KiB, and a Subscribe
// handler's goroutine would keep that for the life of its stream.
func (g *gate) verify(ctx context.Context, h http.Header) (*auth.Principal, error) {
	return offStack(func() (*auth.Principal, error) { return g.verifier.VerifyHeader(ctx, h) })
}

// withBodyDeadline gives every request, from any caller and to any route,
// timeout to deliver its body once its headers are in: the public
// procedures (health, reflection) read a body without a credential, and a
// verified caller must not hold a goroutine with a stalled body either.
// Every RPC of ours takes one request message (unary or server
// streaming). The deadline covers the request, not the response: once the
// body has been read to its end, net/http clears an HTTP/1.1 connection's
// read deadline itself, and an HTTP/2 stream's only ever applied to its
// body, so a Subscribe stream lives on
// (TestStreamsOutliveRequestBodyTimeout). A reflection session (the one
// bidirectional stream) must end its requests within timeout. Without a
// body there is nothing to bound, and over HTTP/1.1 net/http is then
// already waiting on the connection for the client to hang up: a deadline
// would end that wait, and the call with it.
func withBodyDeadline(h http.Handler, timeout time.Duration) http.Handler {
	if timeout <= 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(timeout))
		}
		h.ServeHTTP(w, r)
	})
}

// refusedBodyDrain is how long net/http may go on reading the unread body
// of a refused HTTP/1.1 call after the answer has been sent.
const refusedBodyDrain = 500 * time.Millisecond

// refuse answers a call without a valid credential in its protocol's
// format and without reading its body. Over HTTP/1.1 the connection is
// closed after the answer. Before closing, net/http reads what is left of
// the body (up to 256 KiB), so that a client that sent it all does not get
// a reset, which may destroy the answer, instead of a clean close; the
// read deadline stops that read after refusedBodyDrain, not at an
// attacker's pace. Over HTTP/2 only a connection that has never carried a
// verified call is closed (gracefully, with GOAWAY): one that has, or one
// from an address exempt from the connection budget (a proxy), carries
// other callers' streams.
func (g *gate) refuse(w http.ResponseWriter, r *http.Request, conn *trackedConn, err *connect.Error) {
	if r.ProtoMajor < 2 {
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(refusedBodyDrain))
		w.Header().Set("Connection", "close")
	} else if !conn.isAuthenticated() {
		w.Header().Set("Connection", "close")
	}
	_ = g.errors.Write(w, r, err)
}

// The defaults of [Config.RequestBodyTimeout] and
// [Config.MaxConcurrentStreams].
const (
	DefaultRequestBodyTimeout   = 30 * time.Second
	DefaultMaxConcurrentStreams = 100
)
