package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	"github.com/honeydo/realtime/gen/honeydo/realtime/v1/realtimev1connect"
	"github.com/honeydo/realtime/internal/auth"
	"github.com/honeydo/realtime/internal/broker"
	"github.com/honeydo/realtime/internal/connwatch"
	"github.com/honeydo/realtime/internal/metrics"
	"github.com/honeydo/realtime/internal/room"
	"github.com/honeydo/realtime/internal/rpcerr"
)

// maxEventsPerFrame caps a batch so that a long replay does not become one
// huge message that a client's read limit rejects.
const maxEventsPerFrame = 256

// streamConfig holds the settings of Subscribe streams.
type streamConfig struct {
	Heartbeat    time.Duration
	TokenGrace   time.Duration
	QueueSize    int
	MaxPerUser   int
	Logger       *slog.Logger
	WriteTimeout time.Duration
	// CompressMinBytes is the smallest message a direct stream compresses,
	// as Connect's handler option of the same name.
	CompressMinBytes int
	// NoDirectStreams keeps streams on Connect's path (direct.go).
	NoDirectStreams bool
}

// writeAllowance is the least time a frame's write gets before its
// deadline ([liveStream.send]): the write timeout, and never less than a
// heartbeat interval and a quarter of the timeout, because an HTTP/2
// stream whose deadline passes is reset even while it is idle.
func (c *streamConfig) writeAllowance() time.Duration {
	return max(c.WriteTimeout, c.Heartbeat+c.WriteTimeout/4)
}

// realtimeService implements RealtimeService.
type realtimeService struct {
	broker  broker.Broker
	cfg     streamConfig
	streams *streamRegistry
	metrics *metrics.Metrics
	// closing is closed when the server shuts down: every stream ends with
	// Unavailable so that clients reconnect (to another node).
	closing <-chan struct{}
	// awake counts the streams between a wake-up and their write: more than
	// one means the server has other work, and a woken stream coalesces.
	awake atomic.Int32
	// direct counts the direct streams (direct.go), which outlive their
	// handlers: Shutdown waits for them.
	direct directStreams
	// watcher notices the clients of direct streams leaving.
	watcher *connwatch.Watcher
	// runners run woken direct streams (runners.go).
	runners *runners
}

var _ realtimev1connect.RealtimeServiceHandler = (*realtimeService)(nil)

// newHandler returns the path and handler of the service, with opts and the
// JSON codecs that the events frames of JSON streams need (frame.go).
func (s *realtimeService) newHandler(opts ...connect.HandlerOption) (string, http.Handler) {
	opts = opts[:len(opts):len(opts)] // append must not write into the caller's array
	for _, name := range jsonCodecNames {
		opts = append(opts, connect.WithCodec(jsonCodec{name: name}))
	}
	return realtimev1connect.NewRealtimeServiceHandler(s, opts...)
}

// Subscribe implements RealtimeServiceHandler.
//
// A stream's goroutine spends its life parked in [liveStream.pump] and
// keeps the stack it grew to: setup and the rare branches run in functions
// of their own, and what needs a deep stack (verifying the token in the
// gate, opening the stream with its first write) runs on another goroutine
// ([offStack]), so that the handler's goroutine stays at 8 KiB.
//
// The stream then leaves Connect's handler and goes on as a direct stream
// (direct.go), which parks without a goroutine of its own (parked.go).
func (s *realtimeService) Subscribe(ctx context.Context, req *connect.Request[realtimev1.SubscribeRequest], stream *connect.ServerStream[realtimev1.SubscribeResponse]) (err error) {
	var plan *directPlan
	if !s.cfg.NoDirectStreams {
		plan = planDirect(ctx, req.Peer().Protocol, req.Header().Get("Content-Type"))
	}
	if plan != nil && !plan.shared() {
		// The connection cannot go back to net/http once detached.
		stream.ResponseHeader().Set("Connection", "close")
	}
	// Off the stack: open writes the response headers with the welcome,
	// which takes the goroutine past 8 KiB.
	ls, err := offStack(func() (*liveStream, error) { return s.open(ctx, req, stream) })
	if err != nil {
		return err
	}
	if plan != nil {
		// Subscribe holds the stream's first wake-up (parked.go) until it
		// has set the stream up: Shutdown may wake it from begin on.
		ls.wakes.Store(1)
		if s.direct.begin(ls) {
			if d, err := plan.detach(s.cfg.CompressMinBytes); err == nil {
				ls.out = d
				ls.enc.room = directFrameStart
				// A hijack (HTTP/1.1) clears the connection's deadlines.
				ls.renewDeadline(time.Now())
				ls.park(d, metrics.TakeStreamEnd(ctx))
				return nil
			}
			s.direct.done(ls)
		}
	}
	ls.heartbeat = time.NewTimer(s.cfg.Heartbeat)
	if !ls.expire.IsZero() {
		ls.expiry = time.NewTimer(time.Until(ls.expire))
	}
	defer func() { ls.close(err) }()
	return ls.pump(ctx.Done())
}

// frameWriter is where a stream's frames go: Connect's stream, or the
// connection itself for a direct stream.
type frameWriter interface {
	// send writes one frame: a *realtimev1.SubscribeResponse or what
	// [frameEncoder.encode] returns.
	send(frame any) error
	setWriteDeadline(time.Time) error
	// end is called once the stream is over, with the error it ends with.
	end(err error)
}

// connectWriter sends frames on Connect's stream.
type connectWriter struct {
	stream *connect.ServerStream[realtimev1.SubscribeResponse]
	// rc sets write deadlines on the stream's connection: nil when the
	// handler runs without the gate (it always does in the server).
	rc *http.ResponseController
}

// send writes frame with the stream's codec; hence the untyped frame.
func (w connectWriter) send(frame any) error { return w.stream.Conn().Send(frame) }

func (w connectWriter) setWriteDeadline(t time.Time) error {
	if w.rc == nil {
		return nil
	}
	return w.rc.SetWriteDeadline(t)
}

// end does nothing: Connect writes the end of stream once the handler
// returns, within the deadline [liveStream.close] renewed.
func (connectWriter) end(error) {}

// liveStream is one open Subscribe stream. The handler's goroutine owns
// it, or for a direct stream whichever goroutine runs it (parked.go).
type liveStream struct {
	s         *realtimeService
	out       frameWriter
	sub       *broker.Subscription
	release   func()
	who       *auth.Principal // for the stream's two log lines
	started   time.Time
	delivered int
	reason    string // for the closing log and metrics
	heartbeat *time.Timer
	expiry    *time.Timer // nil without an expiry
	expire    time.Time   // when the token's grace runs out; zero: never
	enc       *frameEncoder
	batch     []*broker.Message
	// lastBatch and lastEvent (the size of the last batch written and the
	// publish time of its last event) tell [coalesce] a burst from a lone
	// event.
	lastBatch int
	lastEvent time.Time
	// coalesceYields bounds [coalesce]'s yields: [maxCoalesceYields], or
	// [maxCoalesceYieldsShared] on a connection shared with other streams.
	coalesceYields int
	// deadline is the write deadline set on the connection; [send] renews
	// it only when a quarter of the timeout has passed.
	deadline time.Time

	// A direct stream's wake-ups (parked.go).
	wakes atomic.Int64
	flags atomic.Uint32 // woke* reasons
	ended func(error)   // reports its end to the RPC metrics
}

// open authorizes and registers the stream, joins its rooms and sends the
// welcome frame. On error nothing is left to release.
func (s *realtimeService) open(ctx context.Context, req *connect.Request[realtimev1.SubscribeRequest], stream *connect.ServerStream[realtimev1.SubscribeResponse]) (_ *liveStream, err error) {
	p, err := auth.RequireUser(ctx)
	if err != nil {
		if svc, ok := auth.FromContext(ctx); ok && svc.Service {
			s.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "stream refused: service credentials may not subscribe", svc.LogAttrs()...)
		}
		return nil, err
	}
	var since *broker.Position
	if c := req.Msg.GetResumeCursor(); c != "" {
		pos, err := broker.ParseCursor(c)
		if err != nil {
			return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("resume_cursor: %w", err))
		}
		since = &pos
	}
	var expire time.Time
	if !p.Expiry.IsZero() {
		expire = p.Expiry.Add(s.cfg.TokenGrace)
		// The verifier's leeway can admit a token whose grace has already
		// run out; opening a stream only to cut it at once would make a
		// client with a stale token loop.
		if !time.Now().Before(expire) {
			return nil, connect.NewError(connect.CodeUnauthenticated, errors.New("token expired: reconnect with a fresh token"))
		}
	}
	// Keyed by user id: only people hold streams (RequireUser above).
	release, err := s.streams.acquire(p.UserID, s.cfg.MaxPerUser)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			release()
		}
	}()

	sub, err := s.broker.Subscribe(ctx, broker.SubscribeOptions{UserID: p.UserID, Rooms: room.For(p), Since: since, QueueSize: s.cfg.QueueSize})
	if err != nil {
		return nil, s.brokerFailed(ctx, "subscribe", err)
	}
	defer func() {
		if err != nil {
			sub.Close()
		}
	}()

	m := s.metrics
	m.OpenStreams.Inc()
	for _, r := range sub.Rooms {
		m.Subscriptions.WithLabelValues(string(r.Kind())).Inc()
	}
	m.Resumes.WithLabelValues(sub.Resume.String()).Inc()
	yields := maxCoalesceYields
	if multiplexed(ctx) {
		yields = maxCoalesceYieldsShared
	}
	ls := &liveStream{
		s:              s,
		out:            connectWriter{stream: stream, rc: responseController(ctx)},
		sub:            sub,
		release:        release,
		who:            p,
		started:        time.Now(),
		reason:         "client_gone",
		coalesceYields: yields,
		enc:            newFrameEncoder(req.Peer().Protocol, req.Header().Get("Content-Type")),
		expire:         expire,
	}
	ls.logInfo("stream opened", slog.String("resume", sub.Resume.String()), slog.String("cursor", sub.Start.Cursor()), slog.String("protocol", req.Peer().Protocol))

	welcome := &realtimev1.Welcome{
		UserId:            p.UserID,
		SessionId:         p.SessionID,
		HouseholdId:       p.HouseholdID,
		Rooms:             room.Strings(sub.Rooms),
		Resume:            resumeStatus(sub.Resume),
		Cursor:            sub.Start.Cursor(),
		HeartbeatInterval: durationpb.New(s.cfg.Heartbeat),
	}
	if !expire.IsZero() {
		welcome.ExpireTime = timestamppb.New(expire)
	}
	if err := ls.send(&realtimev1.SubscribeResponse{Frame: &realtimev1.SubscribeResponse_Welcome{Welcome: welcome}}); err != nil {
		ls.reason = "write_error"
		ls.close(err)
		return nil, err
	}
	return ls, nil
}

// close ends the stream with err. What the stream holds is released before
// the client can read the end and reconnect: a stream at the per-user limit
// must have made room for its successor. The end of stream gets a whole
// write allowance.
func (ls *liveStream) close(err error) {
	ls.finish()
	ls.renewDeadline(time.Now())
	ls.out.end(err)
}

// finish releases what open took and records how the stream ended.
func (ls *liveStream) finish() {
	if ls.heartbeat != nil {
		ls.heartbeat.Stop()
	}
	if ls.expiry != nil {
		ls.expiry.Stop()
	}
	ls.sub.Close()
	ls.release()
	m := ls.s.metrics
	m.OpenStreams.Dec()
	for _, r := range ls.sub.Rooms {
		m.Subscriptions.WithLabelValues(string(r.Kind())).Dec()
	}
	m.StreamsClosed.WithLabelValues(ls.reason).Inc()
	attrs := []slog.Attr{slog.String("reason", ls.reason), slog.Int("events", ls.delivered), slog.Duration("duration", time.Since(ls.started).Round(time.Millisecond))}
	if _, direct := ls.out.(*directWriter); direct {
		attrs = append(attrs, slog.Bool("direct", true))
	}
	ls.logInfo("stream closed", attrs...)
}

// logInfo logs with the caller's attributes first. A child logger per
// stream would keep its preformatted attributes for the stream's whole
// life, for two lines.
func (ls *liveStream) logInfo(msg string, attrs ...slog.Attr) {
	l := ls.s.cfg.Logger
	if !l.Enabled(context.Background(), slog.LevelInfo) {
		return
	}
	l.LogAttrs(context.Background(), slog.LevelInfo, msg, append(ls.who.LogAttrs(), attrs...)...)
}

// pump waits for events, heartbeats, expiry or shutdown until the stream
// ends or gone is closed (the client left). Keep its frame small: this is
// where idle streams park.
func (ls *liveStream) pump(gone <-chan struct{}) error {
	var expired <-chan time.Time
	if ls.expiry != nil {
		expired = ls.expiry.C
	}
	for {
		select {
		case <-ls.sub.Ready():
			if done, err := ls.wake(); done {
				return err
			}
		case <-ls.heartbeat.C:
			if err := ls.sendHeartbeat(); err != nil {
				return err
			}
		case <-expired:
			return ls.endExpired()
		case <-ls.s.closing:
			return ls.endShutdown()
		case <-gone:
			return clientGone()
		}
	}
}

// wake delivers what woke the stream, after letting a burst's events join
// the frame ([coalesce]). A burst is this stream's ([liveStream.inBurst]) or
// the server's: other streams awake at the same moment, as when one event
// goes to a room of many.
func (ls *liveStream) wake() (done bool, err error) {
	others := ls.s.awake.Add(1) > 1
	defer ls.s.awake.Add(-1)
	coalesce(ls.sub, others || ls.inBurst(), ls.coalesceYields, runtime.Gosched)
	return ls.deliver()
}

// maxCoalesceYields bounds how often a woken stream yields before writing
// when it has its connection to itself. Under saturation each yield lets
// about one more event join the frame, and each costs the frame's events a
// round of the run queue: more yields gave bigger frames but, at W2's 1,000
// streams, several times the latency.
const maxCoalesceYields = 16

// maxCoalesceYieldsShared is maxCoalesceYields for a stream whose
// connection other streams share (HTTP/2). Its frames all go through the
// connection's one serve goroutine, a hand-off and a write(2) each, which
// costs several times a direct write: at 16 yields one h2c connection
// carrying 100 streams delivered 0.3x what 100 HTTP/1.1 connections did,
// at 128 0.9x or more (bench/peers' W3). Frames stay bounded by
// maxEventsPerFrame.
const maxCoalesceYieldsShared = 128

// burstGap is how close together events must be published for a stream to
// treat them as a burst that more events will join: a few writes' time.
// Under saturation events are microseconds apart; at light load (a few
// events a second to each stream) they are milliseconds to seconds apart.
const burstGap = 250 * time.Microsecond

// inBurst says whether events are arriving faster than the stream writes
// them: more than one is queued, it wrote more than one last time, or the
// first queued event was published less than [burstGap] after the last one
// written (the gap between the events themselves, which a slow write or a
// busy CPU does not stretch).
func (ls *liveStream) inBurst() bool {
	n, first := ls.sub.Head()
	return inBurst(n, first, ls.lastBatch, ls.lastEvent)
}

func inBurst(queued int, first *broker.Message, lastBatch int, lastEvent time.Time) bool {
	if queued > 1 || lastBatch > 1 {
		return true
	}
	return first != nil && first.Time.Sub(lastEvent) < burstGap
}

// coalesce lets events that are on their way join this frame when the
// stream is in a burst. A write costs far more than the bytes in it
// (loopback write(2) is ~5-8 us here, the bytes ~0.3 ns each), so under
// load one write of many events is much cheaper than many writes of one:
// the stream yields the processor for as long as its queue keeps growing,
// so that publishers and the other streams run first and this stream's
// batch grows. Events wait at most one round of the run queue per yield. A
// lone event is written at once: a yield would only make it wait behind
// every other runnable goroutine.
func coalesce(sub *broker.Subscription, burst bool, maxYields int, yield func()) {
	if !burst {
		return
	}
	n := sub.Len()
	for range maxYields {
		if n >= maxEventsPerFrame {
			return
		}
		yield()
		m := sub.Len()
		if m == n {
			return
		}
		n = m
	}
}

// deliver writes everything queued, up to maxEventsPerFrame events a frame.
// done says the stream is over: a write failed, or the subscription ended
// (err is nil when it was closed without error).
func (ls *liveStream) deliver() (done bool, err error) {
	m := ls.s.metrics
	ls.batch = ls.sub.Next(ls.batch)
	if n := len(ls.batch); n > 0 {
		ls.lastBatch, ls.lastEvent = n, ls.batch[n-1].Time
	}
	for pending := ls.batch; len(pending) > 0; {
		n := min(len(pending), maxEventsPerFrame)
		err := ls.send(ls.enc.encode(pending[:n]))
		ls.enc.release()
		if err != nil {
			ls.reason = "write_error"
			return true, err
		}
		now := time.Now()
		for _, msg := range pending[:n] {
			m.DeliveryLatency.Observe(now.Sub(msg.Time).Seconds())
		}
		m.Delivered.Add(float64(n))
		m.Frames.Inc()
		ls.delivered += n
		pending = pending[n:]
	}
	// Since Go 1.23 Reset discards a pending tick: no drain needed. A
	// parked stream's timer runs a function instead, whose wake-up this
	// frame makes moot too.
	ls.heartbeat.Reset(ls.s.cfg.Heartbeat)
	ls.flags.And(^wokeHeartbeat)
	select {
	case <-ls.sub.Done():
		err := ls.sub.Err()
		switch {
		case err == nil:
			ls.reason = "closed"
			return true, nil
		case errors.Is(err, broker.ErrSlowConsumer):
			ls.reason = "slow_consumer"
		default:
			ls.reason = "broker_closed"
		}
		return true, rpcerr.Error(err)
	default:
		return false, nil
	}
}

func (ls *liveStream) sendHeartbeat() error {
	hb := &realtimev1.SubscribeResponse{Frame: &realtimev1.SubscribeResponse_Heartbeat{Heartbeat: &realtimev1.Heartbeat{Time: timestamppb.Now()}}}
	if err := ls.send(hb); err != nil {
		ls.reason = "write_error"
		return err
	}
	ls.heartbeat.Reset(ls.s.cfg.Heartbeat)
	// A heartbeat means a whole interval without events: the stream is idle
	// and need not keep its last burst's batch buffer.
	if cap(ls.batch) > keptBatch {
		ls.batch = nil
	} else {
		clear(ls.batch)
	}
	return nil
}

// keptBatch is the largest batch buffer an idle stream keeps.
const keptBatch = 16

// send writes one frame. A write that the peer does not accept within the
// write timeout fails: otherwise a client that stops reading (or vanishes
// without a FIN) would pin this goroutine and its connection until TCP gives
// up, long after its subscription was cut as a slow consumer.
//
// Setting a deadline around every write cost a tenth of a light-load frame's
// CPU over HTTP/1.1 (two runtime timer updates), and over HTTP/2 two
// messages to the connection's serve goroutine. So the deadline is renewed
// only when less than [streamConfig.writeAllowance] is left, by a quarter
// of the timeout more than that: a frame gets at least the allowance and at
// most a quarter of the timeout beyond it. As a stream writes at least once
// a heartbeat interval, the deadline never passes while it sits idle.
// The stream renews it for the final frame; net/http clears it once a
// response is done, before an HTTP/1.1 connection is reused.
//
// frame is a *realtimev1.SubscribeResponse or what [frameEncoder.encode]
// returns, which the stream's codec writes.
func (ls *liveStream) send(frame any) error {
	if now := time.Now(); ls.deadline.Sub(now) < ls.s.cfg.writeAllowance() {
		ls.renewDeadline(now)
	}
	return ls.out.send(frame)
}

func (ls *liveStream) renewDeadline(now time.Time) {
	if ls.s.cfg.WriteTimeout <= 0 {
		return
	}
	ls.deadline = now.Add(ls.s.cfg.writeAllowance() + ls.s.cfg.WriteTimeout/4)
	_ = ls.out.setWriteDeadline(ls.deadline)
}

// call is what a Connect handler, which sees only a context, needs to know
// of its HTTP request; the gate puts it in the context.
type call struct {
	http.ResponseController
	// multiplexed says the connection carries other calls too (HTTP/2).
	multiplexed bool
}

type callKey struct{}

// responseController returns the call's http.ResponseController: nil when
// the handler runs without the gate (it always does in the server).
func responseController(ctx context.Context) *http.ResponseController {
	if c, _ := ctx.Value(callKey{}).(*call); c != nil {
		return &c.ResponseController
	}
	return nil
}

// multiplexed says whether the call shares its connection with others.
func multiplexed(ctx context.Context) bool {
	c, _ := ctx.Value(callKey{}).(*call)
	return c != nil && c.multiplexed
}

func (ls *liveStream) end(reason string, code connect.Code, msg string) error {
	ls.reason = reason
	return connect.NewError(code, errors.New(msg))
}

// endShutdown ends the stream for the server's shutdown.
func (ls *liveStream) endShutdown() error {
	return ls.end("shutdown", connect.CodeUnavailable, "server is shutting down: reconnect with your cursor")
}

// endExpired ends the stream whose token's grace ran out.
func (ls *liveStream) endExpired() error {
	return ls.end("token_expired", connect.CodeUnauthenticated, "token expired: reconnect with a fresh token and your cursor")
}

func resumeStatus(s broker.ResumeStatus) realtimev1.ResumeStatus {
	switch s {
	case broker.ResumeOK:
		return realtimev1.ResumeStatus_RESUME_STATUS_RESUMED
	case broker.ResumeExpired:
		return realtimev1.ResumeStatus_RESUME_STATUS_EXPIRED
	case broker.ResumeEpochChanged:
		return realtimev1.ResumeStatus_RESUME_STATUS_EPOCH_CHANGED
	}
	return realtimev1.ResumeStatus_RESUME_STATUS_UNSPECIFIED
}

// Ping implements RealtimeServiceHandler.
func (s *realtimeService) Ping(ctx context.Context, _ *connect.Request[realtimev1.PingRequest]) (*connect.Response[realtimev1.PingResponse], error) {
	return connect.NewResponse(&realtimev1.PingResponse{Time: timestamppb.Now()}), nil
}

// WhoAmI implements RealtimeServiceHandler. A service gets its name as
// user_id, service set, and no household, rooms or expiry.
func (s *realtimeService) WhoAmI(ctx context.Context, _ *connect.Request[realtimev1.WhoAmIRequest]) (*connect.Response[realtimev1.WhoAmIResponse], error) {
	p, err := auth.RequireCaller(ctx)
	if err != nil {
		return nil, err
	}
	res := &realtimev1.WhoAmIResponse{
		UserId:      p.UserID,
		SessionId:   p.SessionID,
		HouseholdId: p.HouseholdID,
		Rooms:       room.Strings(room.For(p)),
		Service:     p.Service,
	}
	if !p.Expiry.IsZero() {
		res.ExpireTime = timestamppb.New(p.Expiry)
	}
	return connect.NewResponse(res), nil
}

// Publish implements RealtimeServiceHandler.
func (s *realtimeService) Publish(ctx context.Context, req *connect.Request[realtimev1.PublishRequest]) (*connect.Response[realtimev1.PublishResponse], error) {
	svc, err := auth.RequireService(ctx)
	if err != nil {
		return nil, err
	}
	target, err := publishTarget(req.Msg.GetTarget())
	if err != nil {
		return nil, err
	}
	ev := req.Msg.GetEvent()
	if ev == nil || ev.Payload == nil {
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("event.payload is required"))
	}
	msg, err := s.broker.Publish(ctx, target, ev)
	if err != nil {
		return nil, s.brokerFailed(ctx, "publish", err)
	}
	if log := s.cfg.Logger; log.Enabled(ctx, slog.LevelDebug) {
		attrs := append(svc.LogAttrs(), slog.String("room", string(target.Room)))
		if target.ExceptUserID != "" {
			attrs = append(attrs, slog.String("except", target.ExceptUserID))
		}
		attrs = append(attrs, slog.String("event_id", msg.Event.GetId()), slog.String("cursor", msg.Position.Cursor()))
		log.LogAttrs(ctx, slog.LevelDebug, "event published", attrs...)
	}
	return connect.NewResponse(&realtimev1.PublishResponse{EventId: msg.Event.GetId(), Cursor: msg.Position.Cursor()}), nil
}

// brokerFailed maps a broker error for the caller; an unexpected one, which
// the caller sees only as "internal error", is logged first.
func (s *realtimeService) brokerFailed(ctx context.Context, op string, err error) error {
	cerr := rpcerr.Error(err)
	if cerr.Code() == connect.CodeInternal {
		s.cfg.Logger.LogAttrs(ctx, slog.LevelError, "broker "+op+" failed", slog.Any("error", err))
	}
	return cerr
}

func publishTarget(t *realtimev1.Target) (broker.Target, error) {
	var target broker.Target
	switch to := t.GetTo().(type) {
	case *realtimev1.Target_UserId:
		if to.UserId == "" {
			return target, connect.NewError(connect.CodeInvalidArgument, errors.New("target.user_id is empty"))
		}
		target.Room = room.User(to.UserId)
	case *realtimev1.Target_HouseholdId:
		if to.HouseholdId == "" {
			return target, connect.NewError(connect.CodeInvalidArgument, errors.New("target.household_id is empty"))
		}
		target.Room = room.Household(to.HouseholdId)
	case *realtimev1.Target_Broadcast_:
		target.Room = room.Broadcast
	default:
		return target, connect.NewError(connect.CodeInvalidArgument, errors.New("target needs one of user_id, household_id or broadcast"))
	}
	target.ExceptUserID = t.GetExceptUserId()
	return target, nil
}

// streamRegistry counts open streams per user, for the per-user limit and
// for operators.
type streamRegistry struct {
	mu     sync.Mutex
	byUser map[string]int
	total  int
}

func newStreamRegistry() *streamRegistry {
	return &streamRegistry{byUser: make(map[string]int)}
}

func (r *streamRegistry) acquire(user string, max int) (release func(), err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if max > 0 && r.byUser[user] >= max {
		return nil, connect.NewError(connect.CodeResourceExhausted, fmt.Errorf("too many open streams for this user (limit %d); close another tab or device", max))
	}
	r.byUser[user]++
	r.total++
	var once sync.Once
	return func() {
		once.Do(func() {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.total--
			if r.byUser[user]--; r.byUser[user] <= 0 {
				delete(r.byUser, user)
			}
		})
	}, nil
}

// snapshot returns the open streams in total and by user, sorted for logs.
func (r *streamRegistry) snapshot() (total int, byUser map[string]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	byUser = make(map[string]int, len(r.byUser))
	for u, n := range r.byUser {
		byUser[u] = n
	}
	return r.total, byUser
}
