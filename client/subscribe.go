package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	"github.com/honeydo/realtime/client/internal/reconnect"
	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	"github.com/honeydo/realtime/gen/honeydo/realtime/v1/realtimev1connect"
)

// ErrStalled is wrapped (in a [*connect.Error] with code Unavailable) by the
// [Status.Err] of a reconnection that the watchdog caused: no Welcome within
// [Options.ConnectTimeout], or no frame within [Options.Watchdog].
var ErrStalled = errors.New("stream stalled")

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
		policy:         opts.Backoff.policy(),
		connectTimeout: opts.ConnectTimeout,
		cursor:         opts.Cursor,
	}
	if s.connectTimeout <= 0 {
		s.connectTimeout = reconnect.ConnectTimeout
	}
	return s.run(ctx)
}

// subscriber is the state of one Subscribe call; only its goroutine
// touches it, but for the fields under mu, which the goroutine that renews
// the stream (renewal) reads and writes too.
type subscriber struct {
	opts           Options
	handler        Handler
	rt             realtimev1connect.RealtimeServiceClient
	policy         reconnect.Policy
	connectTimeout time.Duration

	mu sync.Mutex
	// cursor is the resume position: the last accepted event's cursor, or
	// the last Welcome's when no event followed it. Written under mu.
	cursor string
	// recording, under mu, is set while a renewal's stream opens: the ids
	// of events accepted from then on go into unseen, since that stream
	// replays them.
	recording bool
	unseen    map[string]struct{}
	// seam holds the ids of events that the current, renewed stream
	// replays and that were handled already: they are skipped, once each.
	// Only the subscriber's goroutine uses it.
	seam map[string]struct{}
	// connected is set once a stream has been welcomed.
	connected bool
	// user is the stream's user, from the last Welcome.
	user string
	// identity is the last Welcome's user, household and rooms (see
	// identityOf); empty before the first.
	identity string
	// pending is a resync to report with the next Welcome (the cursor was
	// dropped as invalid).
	pending ResyncReason
}

// outcome is how one connection attempt ended.
type outcome struct {
	welcomed   bool          // the stream got its Welcome
	lived      time.Duration // from the Welcome to the end
	sentCursor bool          // the stream was opened with a resume cursor
	err        error         // why the stream ended; nil for a clean end
	tokenErr   error         // Token failed: no stream was opened
	fatal      error         // a handler or OnResync error: return it
}

func (s *subscriber) run(ctx context.Context) error {
	attempt := 0 // retries since the last healthy stream
	unauth := 0  // Unauthenticated endings since the last Welcome
	for {
		out := s.attempt(ctx)
		// A renewed stream that ended before replaying everything leaves
		// ids behind: the next stream resumes after them anyway.
		s.seam = nil
		if err := ctx.Err(); err != nil {
			return err
		}
		if out.fatal != nil {
			return out.fatal
		}
		// What to do next is the contract's (docs/RECONNECT.md), shared
		// with the browser client through testdata/reconnect/cases.json.
		d := s.policy.AfterEnd(reconnect.Ending{
			Kind:         endKind(out),
			Code:         connect.CodeOf(out.err),
			Welcomed:     out.welcomed,
			Lived:        out.lived,
			SentCursor:   out.sentCursor,
			Attempt:      attempt,
			UnauthStreak: unauth,
		})
		if d.Action == reconnect.Stop {
			switch {
			case out.tokenErr != nil:
				return fmt.Errorf("client: token: %w", out.tokenErr)
			case d.Reason == reconnect.ReasonUnauthenticated:
				return fmt.Errorf("client: subscribe: credential rejected again with a fresh token: %w", out.err)
			}
			return fmt.Errorf("client: subscribe: %w", out.err)
		}
		attempt, unauth = d.Attempt, d.UnauthStreak
		if d.DropCursor {
			s.setCursor("")
			s.pending = ResyncInvalidCursor
		}
		var delay time.Duration
		if d.Ceiling > 0 {
			delay = rand.N(d.Ceiling + 1)
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

// endKind classifies how an attempt ended, for the policy.
func endKind(out outcome) reconnect.EndKind {
	switch {
	case out.tokenErr != nil:
		return reconnect.EndNoToken
	case out.err == nil:
		return reconnect.EndClean
	case errors.Is(out.err, ErrStalled):
		return reconnect.EndStalled
	}
	return reconnect.EndError
}

// attempt opens one stream and reads it until it ends. Before the server
// would end it at its token's expiry, a renewal opens the next stream and
// the attempt carries on with that one (see renewal).
func (s *subscriber) attempt(ctx context.Context) (out outcome) {
	token, err := s.opts.Token(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return outcome{err: ctx.Err()}
		}
		return outcome{tokenErr: err}
	}
	out.sentCursor = s.cursor != ""
	cur := s.open(ctx, token, s.cursor, s.connectTimeout)
	defer func() { cur.close() }()
	ren := &renewal{s: s, ctx: ctx, current: cur.cancel, token: token}
	defer ren.stop()

	var welcomed time.Time
	renewed := false // cur came from a renewal: its welcome was read already
	for {
		var frame *realtimev1.SubscribeResponse
		if renewed {
			frame, renewed = cur.first, false
		} else {
			ok := cur.stream != nil && cur.stream.Receive()
			if cur.stream == nil || !cur.watchdog.Stop() || cur.stalled.Load() {
				if cur.err == nil {
					cur.err = cur.stallErr(out.welcomed)
				}
				out.err = cur.err
				break
			}
			if !ok {
				if next := ren.take(); next != nil {
					// The renewal's stream is welcomed: switch to it. What
					// the old one delivered since the new one's cursor is
					// in the seam now, complete.
					cur.close()
					cur, renewed = next, true
					s.mu.Lock()
					s.seam, s.unseen, s.recording = s.unseen, nil, false
					s.mu.Unlock()
					continue
				}
				out.err = cur.stream.Err()
				break
			}
			frame = cur.stream.Msg()
		}
		switch f := frame.GetFrame().(type) {
		case *realtimev1.SubscribeResponse_Welcome:
			if cur.welcomed {
				out.err = connect.NewError(connect.CodeInternal, errors.New("protocol error: a second welcome frame"))
				return out
			}
			cur.welcomed = true
			if !out.welcomed {
				out.welcomed, welcomed = true, time.Now()
			}
			// A renewal that serves another user, household or rooms (the
			// token changed identity) is no seamless switch: a fresh stream.
			if !cur.renewal || !reconnect.Seamless(f.Welcome.GetResume(), identityOf(f.Welcome) == s.identity) {
				s.seam = nil
				if err := s.welcome(ctx, f.Welcome); err != nil {
					out.fatal = err
					return out
				}
			}
			// A resumed renewal keeps the cursor where it is: its replay
			// of what was handled meanwhile is skipped by id (seam).
			cur.limit = s.watchdogFor(f.Welcome)
			ren.plan(f.Welcome)
		case *realtimev1.SubscribeResponse_Events:
			if !cur.welcomed {
				out.err = connect.NewError(connect.CodeInternal, errors.New("protocol error: events before the welcome frame"))
				return out
			}
			for _, ev := range f.Events.GetEvents() {
				if ctx.Err() != nil {
					return out
				}
				if s.replayed(ev) {
					continue
				}
				// The client's own change: its call's answer was applied
				// already; the event only moves the resume position.
				if ownEvent(ev, s.opts.Origin, s.user) {
					s.accepted(ev)
					continue
				}
				if err := s.handler(ctx, ev); err != nil {
					out.fatal = err
					out.lived = time.Since(welcomed)
					return out
				}
				s.accepted(ev)
			}
		case *realtimev1.SubscribeResponse_Heartbeat:
		default:
			// A frame kind newer than this client: the stream is alive.
		}
		cur.watchdog.Reset(cur.limit)
	}
	if out.welcomed {
		out.lived = time.Since(welcomed)
	}
	return out
}

// setCursor moves the resume position.
func (s *subscriber) setCursor(c string) {
	s.mu.Lock()
	s.cursor = c
	s.mu.Unlock()
}

// accepted records a handled event: its cursor is the resume position, and
// while a renewal's stream opens its id goes into the seam.
func (s *subscriber) accepted(ev *realtimev1.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := ev.GetCursor(); c != "" {
		s.cursor = c
	}
	if s.recording && ev.GetId() != "" {
		if s.unseen == nil {
			s.unseen = make(map[string]struct{})
		}
		s.unseen[ev.GetId()] = struct{}{}
	}
}

// replayed reports whether a renewed stream's event was handled already;
// the seam forgets each id as its replay passes.
func (s *subscriber) replayed(ev *realtimev1.Event) bool {
	if _, ok := s.seam[ev.GetId()]; !ok || ev.GetId() == "" {
		return false
	}
	delete(s.seam, ev.GetId())
	return true
}

// liveConn is one open (or opening) Subscribe stream and its watchdog.
type liveConn struct {
	stream  *connect.ServerStreamForClient[realtimev1.SubscribeResponse]
	cancel  context.CancelFunc
	stalled atomic.Bool
	// watchdog cancels the stream when the server stays silent for limit:
	// first for the Welcome, then for any frame. It only runs while the
	// subscriber waits for the network, never while the handler works.
	watchdog *time.Timer
	limit    time.Duration
	err      error // set when the stream could not be opened
	welcomed bool
	// renewal and first: the stream was opened by a renewal, which read
	// its first frame (the Welcome).
	renewal bool
	first   *realtimev1.SubscribeResponse
}

// open starts a Subscribe stream from cursor, watched for limit.
func (s *subscriber) open(ctx context.Context, token, cursor string, limit time.Duration) *liveConn {
	actx, cancel := context.WithCancel(ctx)
	c := &liveConn{cancel: cancel, limit: limit}
	c.watchdog = time.AfterFunc(limit, func() {
		c.stalled.Store(true)
		cancel()
	})
	req := connect.NewRequest(&realtimev1.SubscribeRequest{ResumeCursor: cursor})
	req.Header().Set("Authorization", "Bearer "+token)
	stream, err := s.rt.Subscribe(actx, req)
	if err != nil {
		c.err = err
		if c.stalled.Load() {
			c.err = c.stallErr(false)
		}
		return c
	}
	c.stream = stream
	return c
}

func (c *liveConn) stallErr(welcomed bool) error {
	what := "no welcome"
	if welcomed {
		what = "no event or heartbeat"
	}
	return connect.NewError(connect.CodeUnavailable, fmt.Errorf("%w: %s within %v; the connection is presumed dead", ErrStalled, what, c.limit))
}

// close ends the stream; cancelling first means closing never waits on a
// dead peer.
func (c *liveConn) close() {
	c.watchdog.Stop()
	c.cancel()
	if c.stream != nil {
		_ = c.stream.Close()
	}
}

// renewal opens the next stream of an attempt before the server ends the
// current one at its token's expiry (plus grace): with a fresh token and
// the cursor, while the current stream keeps delivering. Once the new
// stream is welcomed with a later expiry, the current one is cancelled and
// the attempt switches over; the new stream replays from the cursor what
// the old one delivered meanwhile, which the seam skips. If it fails, the
// current stream carries on and renewal tries again while time is left;
// the stream then ends with its token and the subscriber reconnects.
type renewal struct {
	s   *subscriber
	ctx context.Context

	mu      sync.Mutex
	timer   *time.Timer
	wg      sync.WaitGroup
	stopped bool
	ready   *liveConn          // a welcomed successor, until take
	current context.CancelFunc // cancels the attempt's current stream
	ends    time.Time          // when the server ends the current stream
	token   string             // the current stream's token
	cancel  context.CancelFunc // cancels the renewal in flight
}

// plan schedules the renewal of the stream that w welcomed.
func (r *renewal) plan(w *realtimev1.Welcome) {
	lead := r.s.opts.RenewLead
	if lead == 0 {
		lead = reconnect.RenewLead
	}
	if w.GetExpireTime() == nil || lead < 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return
	}
	r.ends = w.GetExpireTime().AsTime()
	if in, ok := reconnect.RenewIn(time.Until(r.ends), lead); ok {
		r.schedule(in, 0)
	}
}

// schedule runs try n after delay; r.mu is held.
func (r *renewal) schedule(delay time.Duration, n int) {
	if r.timer != nil {
		r.timer.Stop()
	}
	r.timer = time.AfterFunc(delay, func() {
		r.mu.Lock()
		if r.stopped {
			r.mu.Unlock()
			return
		}
		r.wg.Add(1)
		ctx, cancel := context.WithCancel(r.ctx)
		r.cancel = cancel
		r.mu.Unlock()
		defer r.wg.Done()
		r.try(ctx, cancel, n)
	})
}

// try opens the successor stream, try n (from 0).
func (r *renewal) try(ctx context.Context, cancel context.CancelFunc, n int) {
	s := r.s
	ok := false
	defer func() {
		r.mu.Lock()
		r.cancel = nil
		r.mu.Unlock()
		if ok {
			return
		}
		cancel()
		s.mu.Lock()
		s.recording, s.unseen = false, nil
		s.mu.Unlock()
		r.mu.Lock()
		defer r.mu.Unlock()
		if in, ok := reconnect.RenewRetryIn(time.Until(r.ends), n+1); !r.stopped && ok {
			r.schedule(in, n+1)
		}
	}()
	token, err := s.opts.Token(ctx)
	r.mu.Lock()
	same := token == r.token
	r.mu.Unlock()
	if err != nil || same {
		// A token source that hands out the same token (a fixed
		// --token) cannot renew: the stream ends with it.
		return
	}
	s.mu.Lock()
	s.recording = true
	cursor := s.cursor
	s.mu.Unlock()
	c := s.open(ctx, token, cursor, s.connectTimeout)
	// The stream lives in ctx: closing it must release ctx too.
	closeStream := c.cancel
	c.cancel = func() { closeStream(); cancel() }
	if c.stream == nil {
		c.close()
		return
	}
	got := c.stream.Receive()
	if !c.watchdog.Stop() || !got {
		c.close()
		return
	}
	w := c.stream.Msg().GetWelcome()
	r.mu.Lock()
	ends := r.ends
	r.mu.Unlock()
	var next *time.Time
	if w.GetExpireTime() != nil {
		t := w.GetExpireTime().AsTime()
		next = &t
	}
	if w == nil || !reconnect.RenewalTaken(ends, next) {
		// The token was not renewed yet: the new stream would end no
		// later than the current one.
		c.close()
		return
	}
	c.renewal, c.first = true, c.stream.Msg()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		c.close()
		return
	}
	ok = true
	r.ready = c
	r.current() // wakes the attempt, which takes c
	r.current, r.token = c.cancel, token
}

// take returns the welcomed successor, if any.
func (r *renewal) take() *liveConn {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.ready
	r.ready = nil
	return c
}

// stop ends the renewal and waits for it; a successor not taken is closed.
func (r *renewal) stop() {
	r.mu.Lock()
	r.stopped = true
	if r.timer != nil {
		r.timer.Stop()
	}
	if r.cancel != nil {
		r.cancel()
	}
	r.mu.Unlock()
	r.wg.Wait()
	if c := r.take(); c != nil {
		c.close()
	}
	r.s.mu.Lock()
	r.s.recording, r.s.unseen = false, nil
	r.s.mu.Unlock()
}

// welcome takes in a stream's first frame: the new resume position, the
// status reports and, if events may have been missed, the resync.
func (s *subscriber) welcome(ctx context.Context, w *realtimev1.Welcome) error {
	s.user = w.GetUserId()
	id := identityOf(w)
	reason := resyncReason(reconnect.AfterWelcome(reconnect.Welcome{
		Resume: w.GetResume(),
		// The server resumes a cursor on whatever rooms the token grants,
		// so a stream of another household can say RESUMED while the app
		// holds the old household's state.
		IdentityChanged: s.identity != "" && id != s.identity,
		Pending:         policyResync(s.pending),
		First:           !s.connected,
	}))
	s.pending = 0
	s.identity = id
	next := s.cursor
	if c := w.GetCursor(); c != "" {
		next = c
	}
	// After a gap the new position only counts once the app has refetched
	// its state: if OnResync fails, the cursor (and every status) keeps the
	// old position, so a caller that restarts Subscribe from it is told to
	// resync again instead of resuming cleanly past what it never saw.
	if reason == 0 {
		s.setCursor(next)
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
	s.setCursor(next)
	return nil
}

// resyncReason turns the policy's resync into the reason OnResync is
// given. The initial load is the caller's before Subscribe: none.
func resyncReason(r reconnect.Resync) ResyncReason {
	switch r {
	case reconnect.ResyncExpired:
		return ResyncExpired
	case reconnect.ResyncEpochChanged:
		return ResyncEpochChanged
	case reconnect.ResyncInvalidCursor:
		return ResyncInvalidCursor
	case reconnect.ResyncIdentityChanged:
		return ResyncIdentityChanged
	}
	return 0
}

// policyResync is the inverse of resyncReason, for a pending resync.
func policyResync(r ResyncReason) reconnect.Resync {
	switch r {
	case ResyncExpired:
		return reconnect.ResyncExpired
	case ResyncEpochChanged:
		return reconnect.ResyncEpochChanged
	case ResyncInvalidCursor:
		return reconnect.ResyncInvalidCursor
	case ResyncIdentityChanged:
		return reconnect.ResyncIdentityChanged
	}
	return reconnect.ResyncNone
}

// identityOf names whose events a stream carries: its user, household and
// set of rooms.
func identityOf(w *realtimev1.Welcome) string {
	rooms := slices.Clone(w.GetRooms())
	slices.Sort(rooms)
	return strings.Join(append([]string{w.GetUserId(), w.GetHouseholdId()}, rooms...), "\x00")
}

// watchdogFor returns how long a stream may stay silent.
func (s *subscriber) watchdogFor(w *realtimev1.Welcome) time.Duration {
	if s.opts.Watchdog > 0 {
		return s.opts.Watchdog
	}
	return reconnect.Watchdog(w.GetHeartbeatInterval().AsDuration())
}

func (s *subscriber) status(st Status) {
	if s.opts.OnStatus != nil {
		s.opts.OnStatus(st)
	}
}
