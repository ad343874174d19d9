package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	"github.com/honeydo/realtime/gen/honeydo/realtime/v1/realtimev1connect"
)

// ErrStalled is wrapped (in a [*connect.Error] with code Unavailable) by the
// [Status.Err] of a reconnection that the watchdog caused: no Welcome within
// [Options.ConnectTimeout], or no frame within [Options.Watchdog].
var ErrStalled = errors.New("stream stalled")

// Default timings; see [Options].
const (
	defaultConnectTimeout = 10 * time.Second
	defaultHeartbeat      = 4 * time.Second
)

// Subscribe opens a Subscribe stream and keeps it open until ctx ends,
// handing every event to handler in order, exactly once across reconnects
// within the server's history window (see the package documentation).
//
// It returns ctx.Err() once ctx ends; the error of handler or
// [Options.OnResync], unchanged, if one fails; an error wrapping the error
// of [Options.Token] if that fails; or, for a failure that reconnecting
// cannot fix, an error wrapping the stream's [*connect.Error], so that
// [connect.CodeOf] gives its code.
func Subscribe(ctx context.Context, opts Options, handler Handler) error {
	if handler == nil {
		return errors.New("client: Subscribe needs a handler")
	}
	if opts.Token == nil {
		return errors.New("client: Options.Token is required")
	}
	base, err := checkBaseURL(opts.BaseURL)
	if err != nil {
		return err
	}
	hc := opts.HTTPClient
	if hc == nil {
		tr := newTransport(opts.Protocol, base)
		defer tr.CloseIdleConnections()
		hc = &http.Client{Transport: tr}
	}
	s := &subscriber{
		opts:           opts,
		handler:        handler,
		rt:             newGenerated(hc, base, opts.Protocol, opts.ClientOptions),
		backoff:        opts.Backoff.withDefaults(),
		connectTimeout: opts.ConnectTimeout,
		cursor:         opts.Cursor,
	}
	if s.connectTimeout <= 0 {
		s.connectTimeout = defaultConnectTimeout
	}
	return s.run(ctx)
}

// subscriber is the state of one Subscribe call; only its goroutine
// touches it.
type subscriber struct {
	opts           Options
	handler        Handler
	rt             realtimev1connect.RealtimeServiceClient
	backoff        Backoff
	connectTimeout time.Duration

	// cursor is the resume position: the last accepted event's cursor, or
	// the last Welcome's when no event followed it.
	cursor string
	// connected is set once a stream has been welcomed.
	connected bool
	// pending is a resync to report with the next Welcome (the cursor was
	// dropped as invalid).
	pending ResyncReason
}

// outcome is how one connection attempt ended.
type outcome struct {
	welcomed bool          // the stream got its Welcome
	lived    time.Duration // from the Welcome to the end
	err      error         // why the stream ended; nil for a clean end
	fatal    error         // a handler, OnResync or Token error: return it
}

func (s *subscriber) run(ctx context.Context) error {
	attempt := 0 // attempts since the last healthy stream
	unauth := 0  // Unauthenticated endings since the last Welcome
	for {
		out := s.attempt(ctx)
		if err := ctx.Err(); err != nil {
			return err
		}
		if out.fatal != nil {
			return out.fatal
		}
		if out.welcomed {
			unauth = 0
			// A stream that stayed up a while was healthy: start the
			// backoff again. One that died at once was not, or a server
			// that welcomes and drops would be hammered.
			if out.lived >= s.backoff.Initial {
				attempt = 0
			}
		}
		immediate := false
		if out.err != nil {
			switch code := connect.CodeOf(out.err); {
			case code == connect.CodeUnauthenticated:
				unauth++
				if unauth >= 2 {
					return fmt.Errorf("client: subscribe: credential rejected again with a fresh token: %w", out.err)
				}
				// The usual case: a healthy stream reached its token's
				// expiry. Reopen at once with a fresh token and the cursor.
				immediate = out.welcomed && attempt == 0
			case code == connect.CodeInvalidArgument && s.cursor != "" && !out.welcomed:
				s.cursor = ""
				s.pending = ResyncInvalidCursor
				immediate = true
			case isFatal(code):
				return fmt.Errorf("client: subscribe: %w", out.err)
			}
		}
		attempt++
		var delay time.Duration
		if !immediate {
			delay = s.backoff.Delay(attempt)
		}
		s.status(Status{State: StateReconnecting, Attempt: attempt, Delay: delay, Err: out.err, Cursor: s.cursor})
		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
	}
}

// isFatal reports whether a stream that failed with code should not be
// retried: the request itself is wrong and a retry would fail the same way.
func isFatal(code connect.Code) bool {
	switch code {
	case connect.CodePermissionDenied, connect.CodeUnimplemented, connect.CodeInvalidArgument,
		connect.CodeFailedPrecondition, connect.CodeNotFound:
		return true
	}
	return false
}

// attempt opens one stream and reads it until it ends.
func (s *subscriber) attempt(ctx context.Context) (out outcome) {
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	token, err := s.opts.Token(actx)
	if err != nil {
		if ctx.Err() != nil {
			return outcome{err: ctx.Err()}
		}
		return outcome{fatal: fmt.Errorf("client: token: %w", err)}
	}
	req := connect.NewRequest(&realtimev1.SubscribeRequest{ResumeCursor: s.cursor})
	req.Header().Set("Authorization", "Bearer "+token)

	// The watchdog cancels the attempt when the server stays silent too
	// long: first for the Welcome, then for any frame. It only runs while
	// we wait for the network, never while the handler works.
	limit := s.connectTimeout
	var stalled atomic.Bool
	watchdog := time.AfterFunc(limit, func() {
		stalled.Store(true)
		cancel()
	})
	defer watchdog.Stop()
	stallErr := func() error {
		what := "no welcome"
		if out.welcomed {
			what = "no event or heartbeat"
		}
		return connect.NewError(connect.CodeUnavailable, fmt.Errorf("%w: %s within %v; the connection is presumed dead", ErrStalled, what, limit))
	}

	stream, err := s.rt.Subscribe(actx, req)
	if err != nil {
		if stalled.Load() {
			err = stallErr()
		}
		return outcome{err: err}
	}
	defer func() {
		// Cancel first so that closing never waits on a dead peer.
		cancel()
		stream.Close()
	}()
	var welcomed time.Time
	for {
		ok := stream.Receive()
		if !watchdog.Stop() || stalled.Load() {
			out.err = stallErr()
			break
		}
		if !ok {
			out.err = stream.Err()
			break
		}
		switch f := stream.Msg().GetFrame().(type) {
		case *realtimev1.SubscribeResponse_Welcome:
			if out.welcomed {
				out.err = connect.NewError(connect.CodeInternal, errors.New("protocol error: a second welcome frame"))
				return out
			}
			out.welcomed, welcomed = true, time.Now()
			if err := s.welcome(ctx, f.Welcome); err != nil {
				out.fatal = err
				return out
			}
			limit = s.watchdogFor(f.Welcome)
		case *realtimev1.SubscribeResponse_Events:
			if !out.welcomed {
				out.err = connect.NewError(connect.CodeInternal, errors.New("protocol error: events before the welcome frame"))
				return out
			}
			for _, ev := range f.Events.GetEvents() {
				if ctx.Err() != nil {
					return out
				}
				if err := s.handler(ctx, ev); err != nil {
					out.fatal = err
					out.lived = time.Since(welcomed)
					return out
				}
				if c := ev.GetCursor(); c != "" {
					s.cursor = c
				}
			}
		case *realtimev1.SubscribeResponse_Heartbeat:
		default:
			// A frame kind newer than this client: the stream is alive.
		}
		watchdog.Reset(limit)
	}
	if out.welcomed {
		out.lived = time.Since(welcomed)
	}
	return out
}

// welcome takes in a stream's first frame: the new resume position, the
// status reports and, if events may have been missed, the resync.
func (s *subscriber) welcome(ctx context.Context, w *realtimev1.Welcome) error {
	reason := s.pending
	s.pending = 0
	switch w.GetResume() {
	case realtimev1.ResumeStatus_RESUME_STATUS_EXPIRED:
		reason = ResyncExpired
	case realtimev1.ResumeStatus_RESUME_STATUS_EPOCH_CHANGED:
		reason = ResyncEpochChanged
	}
	next := s.cursor
	if c := w.GetCursor(); c != "" {
		next = c
	}
	// After a gap the new position only counts once the app has refetched
	// its state: if OnResync fails, the cursor (and every status) keeps the
	// old position, so a caller that restarts Subscribe from it is told to
	// resync again instead of resuming cleanly past what it never saw.
	if reason == 0 {
		s.cursor = next
	}
	reconnected := s.connected
	s.connected = true
	s.status(Status{
		State:       StateConnected,
		Welcome:     w,
		Resumed:     w.GetResume() == realtimev1.ResumeStatus_RESUME_STATUS_RESUMED,
		Reconnected: reconnected,
		Cursor:      s.cursor,
	})
	if reason == 0 {
		return nil
	}
	s.status(Status{State: StateResync, Welcome: w, Reason: reason, Cursor: s.cursor})
	if s.opts.OnResync != nil {
		if err := s.opts.OnResync(ctx, reason); err != nil {
			return err
		}
	}
	s.cursor = next
	return nil
}

// watchdogFor returns how long a stream may stay silent.
func (s *subscriber) watchdogFor(w *realtimev1.Welcome) time.Duration {
	if s.opts.Watchdog > 0 {
		return s.opts.Watchdog
	}
	hb := w.GetHeartbeatInterval().AsDuration()
	if hb <= 0 {
		hb = defaultHeartbeat
	}
	return 2 * hb
}

func (s *subscriber) status(st Status) {
	if s.opts.OnStatus != nil {
		s.opts.OnStatus(st)
	}
}
