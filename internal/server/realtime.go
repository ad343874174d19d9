package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	"github.com/honeydo/realtime/gen/honeydo/realtime/v1/realtimev1connect"
	"github.com/honeydo/realtime/internal/auth"
	"github.com/honeydo/realtime/internal/broker"
	"github.com/honeydo/realtime/internal/metrics"
)

// maxEventsPerFrame caps a batch so that a long replay does not become one
// huge message that a client's read limit rejects.
const maxEventsPerFrame = 256

// streamConfig holds the settings of Subscribe streams.
type streamConfig struct {
	Heartbeat  time.Duration
	TokenGrace time.Duration
	QueueSize  int
	MaxPerUser int
	Logger     *slog.Logger
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
}

var _ realtimev1connect.RealtimeServiceHandler = (*realtimeService)(nil)

func principal(ctx context.Context) (*auth.Principal, error) {
	p, ok := auth.FromContext(ctx)
	if !ok {
		return nil, connect.NewError(connect.CodeUnauthenticated, errors.New("no verified caller"))
	}
	return p, nil
}

// roomsFor derives a principal's rooms; never from anything the client sends.
func roomsFor(p *auth.Principal) []broker.Room {
	rooms := []broker.Room{broker.UserRoom(p.UserID)}
	if p.HouseholdID != "" {
		rooms = append(rooms, broker.HouseholdRoom(p.HouseholdID))
	}
	rooms = append(rooms, broker.BroadcastRoom)
	for _, r := range p.ExtraRooms {
		rooms = append(rooms, broker.Room(r))
	}
	return rooms
}

func roomNames(rooms []broker.Room) []string {
	out := make([]string, len(rooms))
	for i, r := range rooms {
		out[i] = string(r)
	}
	return out
}

// Subscribe implements RealtimeServiceHandler.
func (s *realtimeService) Subscribe(ctx context.Context, req *connect.Request[realtimev1.SubscribeRequest], stream *connect.ServerStream[realtimev1.SubscribeResponse]) error {
	p, err := principal(ctx)
	if err != nil {
		return err
	}
	var since *broker.Position
	if c := req.Msg.GetResumeCursor(); c != "" {
		pos, err := broker.ParseCursor(c)
		if err != nil {
			return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("resume_cursor: %w", err))
		}
		since = &pos
	}
	release, err := s.streams.acquire(p.UserID, s.cfg.MaxPerUser)
	if err != nil {
		return err
	}
	defer release()

	sub, err := s.broker.Subscribe(ctx, broker.SubscribeOptions{UserID: p.UserID, Rooms: roomsFor(p), Since: since, QueueSize: s.cfg.QueueSize})
	if err != nil {
		return brokerError(err)
	}
	defer sub.Close()

	var expire time.Time
	if !p.Expiry.IsZero() {
		expire = p.Expiry.Add(s.cfg.TokenGrace)
		// The verifier's leeway can admit a token whose grace has already
		// run out; opening a stream only to cut it at once would make a
		// client with a stale token loop.
		if !time.Now().Before(expire) {
			return connect.NewError(connect.CodeUnauthenticated, errors.New("token expired: reconnect with a fresh token"))
		}
	}
	m := s.metrics
	m.OpenStreams.Inc()
	for _, r := range sub.Rooms {
		m.Subscriptions.WithLabelValues(metrics.RoomKind(string(r))).Inc()
	}
	m.Resumes.WithLabelValues(resumeLabel(sub.Resume)).Inc()
	log := s.cfg.Logger.With("user", p.UserID, "household", p.HouseholdID, "session", p.SessionID)
	log.Info("stream opened", "resume", sub.Resume.String(), "cursor", sub.Start.Cursor(), "protocol", req.Peer().Protocol)
	started := time.Now()
	delivered := 0
	reason := "client_gone"
	defer func() {
		m.OpenStreams.Dec()
		for _, r := range sub.Rooms {
			m.Subscriptions.WithLabelValues(metrics.RoomKind(string(r))).Dec()
		}
		m.StreamsClosed.WithLabelValues(reason).Inc()
		log.Info("stream closed", "reason", reason, "events", delivered, "duration", time.Since(started).Round(time.Millisecond))
	}()

	welcome := &realtimev1.Welcome{
		UserId:            p.UserID,
		SessionId:         p.SessionID,
		HouseholdId:       p.HouseholdID,
		Rooms:             roomNames(sub.Rooms),
		Resume:            resumeStatus(sub.Resume),
		Cursor:            sub.Start.Cursor(),
		HeartbeatInterval: durationpb.New(s.cfg.Heartbeat),
	}
	if !expire.IsZero() {
		welcome.ExpireTime = timestamppb.New(expire)
	}
	if err := stream.Send(&realtimev1.SubscribeResponse{Frame: &realtimev1.SubscribeResponse_Welcome{Welcome: welcome}}); err != nil {
		reason = "write_error"
		return err
	}

	heartbeat := time.NewTimer(s.cfg.Heartbeat)
	defer heartbeat.Stop()
	var expired <-chan time.Time
	if !expire.IsZero() {
		t := time.NewTimer(time.Until(expire))
		defer t.Stop()
		expired = t.C
	}
	enc := newFrameEncoder(req.Header().Get("Content-Type"))
	var batch []*broker.Message
	for {
		select {
		case <-sub.Ready():
			batch = sub.Next(batch)
			for pending := batch; len(pending) > 0; {
				n := min(len(pending), maxEventsPerFrame)
				if err := stream.Send(enc.encode(pending[:n])); err != nil {
					reason = "write_error"
					return err
				}
				now := time.Now()
				for _, msg := range pending[:n] {
					m.DeliveryLatency.Observe(now.Sub(msg.Time).Seconds())
				}
				m.Delivered.Add(float64(n))
				m.Frames.Inc()
				delivered += n
				pending = pending[n:]
			}
			// Since Go 1.23 Reset discards a pending tick: no drain needed.
			heartbeat.Reset(s.cfg.Heartbeat)
			select {
			case <-sub.Done():
				err := sub.Err()
				switch {
				case err == nil:
					reason = "closed"
					return nil
				case errors.Is(err, broker.ErrSlowConsumer):
					reason = "slow_consumer"
				default:
					reason = "broker_closed"
				}
				return brokerError(err)
			default:
			}
		case <-heartbeat.C:
			hb := &realtimev1.SubscribeResponse{Frame: &realtimev1.SubscribeResponse_Heartbeat{Heartbeat: &realtimev1.Heartbeat{Time: timestamppb.Now()}}}
			if err := stream.Send(hb); err != nil {
				reason = "write_error"
				return err
			}
			heartbeat.Reset(s.cfg.Heartbeat)
		case <-expired:
			reason = "token_expired"
			return connect.NewError(connect.CodeUnauthenticated, errors.New("token expired: reconnect with a fresh token and your cursor"))
		case <-s.closing:
			reason = "shutdown"
			return connect.NewError(connect.CodeUnavailable, errors.New("server is shutting down: reconnect with your cursor"))
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func resumeLabel(s broker.ResumeStatus) string {
	switch s {
	case broker.ResumeOK:
		return "resumed"
	case broker.ResumeExpired:
		return "expired"
	case broker.ResumeEpochChanged:
		return "epoch_changed"
	}
	return "none"
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

// WhoAmI implements RealtimeServiceHandler.
func (s *realtimeService) WhoAmI(ctx context.Context, _ *connect.Request[realtimev1.WhoAmIRequest]) (*connect.Response[realtimev1.WhoAmIResponse], error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	res := &realtimev1.WhoAmIResponse{
		UserId:      p.UserID,
		SessionId:   p.SessionID,
		HouseholdId: p.HouseholdID,
		Rooms:       roomNames(roomsFor(p)),
		Service:     p.Service,
	}
	if !p.Expiry.IsZero() {
		res.ExpireTime = timestamppb.New(p.Expiry)
	}
	return connect.NewResponse(res), nil
}

// Publish implements RealtimeServiceHandler.
func (s *realtimeService) Publish(ctx context.Context, req *connect.Request[realtimev1.PublishRequest]) (*connect.Response[realtimev1.PublishResponse], error) {
	if _, err := auth.RequireService(ctx); err != nil {
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
		return nil, brokerError(err)
	}
	return connect.NewResponse(&realtimev1.PublishResponse{EventId: msg.Event.GetId(), Cursor: msg.Position.Cursor()}), nil
}

func publishTarget(t *realtimev1.Target) (broker.Target, error) {
	var target broker.Target
	switch to := t.GetTo().(type) {
	case *realtimev1.Target_UserId:
		if to.UserId == "" {
			return target, connect.NewError(connect.CodeInvalidArgument, errors.New("target.user_id is empty"))
		}
		target.Room = broker.UserRoom(to.UserId)
	case *realtimev1.Target_HouseholdId:
		if to.HouseholdId == "" {
			return target, connect.NewError(connect.CodeInvalidArgument, errors.New("target.household_id is empty"))
		}
		target.Room = broker.HouseholdRoom(to.HouseholdId)
	case *realtimev1.Target_Broadcast_:
		target.Room = broker.BroadcastRoom
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
