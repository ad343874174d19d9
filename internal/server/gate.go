package server

import (
	"context"
	"io"
	"net/http"
	"time"

	"connectrpc.com/connect"

	"github.com/honeydo/realtime/internal/auth"
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
	// bodyTimeout bounds how long a verified caller may take to send its
	// request message. Every procedure behind the gate takes exactly one
	// (unary or server streaming); a client-streaming procedure would need
	// a deadline per message instead.
	bodyTimeout time.Duration
}

func (g *gate) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn := connFrom(r.Context())
		p, err := g.verifier.VerifyHeader(r.Context(), r.Header)
		if err != nil {
			g.refuse(w, r, conn, err)
			return
		}
		conn.markAuthenticated()
		rc := http.NewResponseController(w)
		ctx := auth.WithPrincipal(r.Context(), p)
		ctx = context.WithValue(ctx, responseControllerKey{}, rc)
		r = r.WithContext(ctx)
		if g.bodyTimeout > 0 && r.Body != nil && r.Body != http.NoBody {
			_ = rc.SetReadDeadline(time.Now().Add(g.bodyTimeout))
			r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc}
		}
		next.ServeHTTP(w, r)
	})
}

// refuse answers a call without a valid credential in its protocol's
// format and without reading its body. Over HTTP/1.1 the connection is
// closed after the answer: net/http would otherwise read up to 256 KiB of
// the unread body, at the attacker's pace, before reusing it; a read
// deadline in the past makes that read fail at once. Over HTTP/2 only a
// connection that has never carried a verified call is closed
// (gracefully, with GOAWAY): one that has, or one from an address exempt
// from the connection budget (a proxy), carries other callers' streams.
func (g *gate) refuse(w http.ResponseWriter, r *http.Request, conn *trackedConn, err error) {
	if r.ProtoMajor < 2 {
		_ = http.NewResponseController(w).SetReadDeadline(time.Now())
		w.Header().Set("Connection", "close")
	} else if !conn.isAuthenticated() {
		w.Header().Set("Connection", "close")
	}
	_ = g.errors.Write(w, r, auth.ConnectError(err))
}

// deadlineBody clears the request's read deadline once the body has been
// read to its end: a Subscribe stream lives on for minutes after its
// request, and over HTTP/1.1 a deadline left on the connection would end
// the server's wait for the client to hang up, and with it the call.
type deadlineBody struct {
	io.ReadCloser
	rc      *http.ResponseController
	cleared bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.cleared {
		b.cleared = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// The defaults of [Config.RequestBodyTimeout] and
// [Config.MaxConcurrentStreams].
const (
	DefaultRequestBodyTimeout   = 10 * time.Second
	DefaultMaxConcurrentStreams = 100
)
