package broker

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	"github.com/honeydo/realtime/internal/room"
)

// DefaultStreamName is the JetStream stream a [JetStream] broker uses when
// JetStreamConfig.Stream is empty.
const DefaultStreamName = "HONEYDO_REALTIME"

// headerExceptUser carries Target.ExceptUserID; the room is the subject.
const headerExceptUser = "Honeydo-Except-User"

// JetStreamConfig configures a [JetStream] broker. URL (or Conn) is
// required; every other zero value means the documented default.
type JetStreamConfig struct {
	// URL is the NATS server URL, or several separated by commas. Any
	// server of a cluster will do: the client learns the others from it.
	URL string
	// Options are applied after the broker's own connection options (name
	// "realtimed", reconnect forever every 500ms, no reconnect buffer so
	// that a publish during an outage fails at once, pings every 10s).
	// Credentials and TLS come from [NATSAuth.Options].
	Options []nats.Option
	// Conn, when set, is used instead of dialling URL, and Close leaves it
	// open. It should reconnect forever (nats.MaxReconnects(-1)).
	Conn *nats.Conn
	// Stream names the JetStream stream. Empty means [DefaultStreamName].
	Stream string
	// SubjectPrefix prefixes every subject (see the layout in
	// jetstream_subject.go): dot-separated tokens of [A-Za-z0-9_-]. Empty
	// means "honeydo.rt". Nodes that share a stream must share the prefix.
	SubjectPrefix string
	// History becomes the stream's limits: MaxAge, MaxMsgs and MaxBytes.
	// See [HistoryLimits] for the defaults (2 minutes, 100,000 events,
	// 64 MiB).
	History HistoryLimits
	// Replicas is the stream's replication factor. Zero means 1, right for
	// one NATS server; use 3 on a NATS cluster so that losing a server
	// loses nothing.
	Replicas int
	// MemoryStorage keeps the stream in the NATS servers' memory instead
	// of files: faster, but a NATS restart loses history (and changes the
	// epoch). The default is file storage. An existing stream keeps the
	// storage it was created with.
	MemoryStorage bool
	// PublishTimeout bounds how long Publish waits for JetStream's ack,
	// retrying while a stream leader is being elected. Zero means 5s.
	PublishTimeout time.Duration
	// Logger receives the broker's logs. Nil means slog.Default().
	Logger *slog.Logger
}

// JetStream is a [Broker] whose log is a NATS JetStream stream, shared by
// every realtimed node connected to it: an event published on any node
// reaches subscribers on every node, and a cursor from one node resumes on
// any other.
//
// Positions: Offset is the stream sequence; Epoch is derived from the
// stream's name and creation time, so restarting realtimed (or NATS, with
// file storage) keeps it, while a deleted and recreated stream gets a new
// one and old cursors are answered with [ResumeEpochChanged].
//
// Fan-out: each node runs ONE ordered consumer over the whole subject space
// and hands every event to the in-process hub, which queues it on the
// subscriptions of its room. Browser streams cost no NATS resources, a
// node's NATS traffic is one copy of each event however many streams it
// serves, and per-room order is the stream's order.
//
// Outages: the NATS client reconnects by itself and the ordered consumer
// resumes after the last sequence this node delivered, so live streams
// catch up without loss. If events left the stream before this node could
// deliver them (an outage longer than the history window), or the stream
// was recreated, every live stream ends with [ErrUnavailable] and its
// client resumes — and is told whether its resume succeeded.
//
// Concurrency: all methods may be called from any goroutine.
type JetStream struct {
	cfg      JetStreamConfig
	log      *slog.Logger
	nc       *nats.Conn
	ownsConn bool
	js       jetstream.JetStream
	prefix   string

	ctx    context.Context // ends with Close
	cancel context.CancelFunc
	done   chan struct{} // closed when the consumer supervisor returns
	kick   chan struct{} // capacity 1: "look at the stream now"
	bg     sync.WaitGroup

	mu          sync.Mutex
	closed      bool
	epoch       string
	head        uint64 // stream sequence of the last event handed to the hub
	gen         uint64 // consumer generation; older consumers' messages are dropped
	needRestart bool   // the consumer skipped a sequence; restart it from head+1
	hub         hub
	pending     map[room.Name]map[*pendingResume]struct{}
	waiters     map[chan struct{}]uint64 // closed once head reaches the value
	cc          jetstream.ConsumeContext
	// connCtx is cancelled (with errConnLost) when the NATS connection
	// drops, so that requests in flight fail at once instead of waiting
	// for their timeout; a new one is made on reconnect.
	connCtx    context.Context
	connCancel context.CancelCauseFunc
	// streamErr is the supervisor's last failure to read the stream while
	// connected (JetStream down, no stream leader); nil once it reads it.
	streamErr error
	ready     readySignal
}

var errConnLost = errors.New("connection to NATS lost")

var (
	_ Broker = (*JetStream)(nil)
	_ Closer = (*JetStream)(nil)
)

// pendingResume is a resuming subscription between joining live and
// receiving its replay: live events of its rooms are buffered here, then
// queued after the replay.
type pendingResume struct {
	sub   *Subscription
	buf   []*Message
	limit int
	err   error
}

func (p *pendingResume) add(m *Message) {
	if p.err != nil || m.Target.excludes(p.sub.UserID) {
		return
	}
	if len(p.buf) >= p.limit {
		p.err = ErrSlowConsumer
		p.buf = nil
		return
	}
	p.buf = append(p.buf, m)
}

// NewJetStream connects to NATS, creates or updates the stream (and logs
// it), starts this node's consumer at the end of the stream and returns the
// broker. If NATS cannot be reached the error wraps [ErrUnavailable]. ctx
// bounds the start-up only.
func NewJetStream(ctx context.Context, cfg JetStreamConfig) (*JetStream, error) {
	if cfg.Stream == "" {
		cfg.Stream = DefaultStreamName
	}
	if cfg.SubjectPrefix == "" {
		cfg.SubjectPrefix = defaultSubjectPrefix
	}
	if !validSubjectPrefix(cfg.SubjectPrefix) {
		return nil, fmt.Errorf("broker: subject prefix %q must be dot-separated tokens of [A-Za-z0-9_-]", cfg.SubjectPrefix)
	}
	if strings.ContainsAny(cfg.Stream, ". *>\t\r\n/\\") {
		return nil, fmt.Errorf("broker: stream name %q may not contain spaces, dots, slashes or wildcards", cfg.Stream)
	}
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.PublishTimeout <= 0 {
		cfg.PublishTimeout = 5 * time.Second
	}
	cfg.History = cfg.History.withDefaults()
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	j := &JetStream{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "broker", "backend", "jetstream", "stream", cfg.Stream),
		prefix:  cfg.SubjectPrefix,
		done:    make(chan struct{}),
		kick:    make(chan struct{}, 1),
		hub:     newHub(),
		pending: make(map[room.Name]map[*pendingResume]struct{}),
		waiters: make(map[chan struct{}]uint64),
	}
	if cfg.Conn != nil {
		j.nc = cfg.Conn
	} else {
		if cfg.URL == "" {
			return nil, errors.New("broker: JetStreamConfig needs a NATS URL")
		}
		opts := append(j.defaultOptions(), cfg.Options...)
		nc, err := nats.Connect(cfg.URL, opts...)
		if err != nil {
			return nil, fmt.Errorf("%w: connecting to NATS at %s: %v", ErrUnavailable, redactURL(cfg.URL), err)
		}
		j.nc, j.ownsConn = nc, true
	}
	js, err := jetstream.New(j.nc)
	if err != nil {
		j.closeConn()
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	j.js = js
	j.ctx, j.cancel = context.WithCancel(context.Background())
	j.connCtx, j.connCancel = context.WithCancelCause(j.ctx)
	statuses := j.nc.StatusChanged()
	j.bg.Add(1)
	go func() {
		defer j.bg.Done()
		j.watchConn(statuses)
	}()
	j.refreshConn()

	info, err := j.ensureStream(ctx)
	if err == nil {
		err = j.startConsumer(info)
	}
	if err != nil {
		j.cancel()
		j.closeConn()
		return nil, err
	}
	go j.supervise()
	return j, nil
}

func (j *JetStream) defaultOptions() []nats.Option {
	return []nats.Option{
		nats.Name("realtimed"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		// No buffering while disconnected: Publish must fail at once with
		// Unavailable rather than hang until its timeout.
		nats.ReconnectBufSize(-1),
		nats.PingInterval(10 * time.Second),
		nats.MaxPingsOutstanding(2),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			// The client reports its own Close as a disconnect too; only
			// an outage is worth a warning.
			if nc.IsClosed() {
				return
			}
			j.log.Warn("disconnected from NATS; reconnecting", "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			j.log.Info("reconnected to NATS", "server", nc.ConnectedUrlRedacted())
			j.poke()
		}),
	}
}

// watchConn follows the connection's status to keep connCtx current.
func (j *JetStream) watchConn(ch chan nats.Status) {
	defer j.nc.RemoveStatusListener(ch)
	for {
		select {
		case <-j.ctx.Done():
			return
		case _, ok := <-ch:
			if !ok {
				return
			}
			j.refreshConn()
		}
	}
}

func (j *JetStream) refreshConn() {
	connected := j.nc.IsConnected()
	j.mu.Lock()
	defer j.mu.Unlock()
	j.ready.notify()
	switch {
	case !connected:
		j.connCancel(errConnLost)
	case j.connCtx.Err() != nil && j.ctx.Err() == nil:
		j.connCtx, j.connCancel = context.WithCancelCause(j.ctx)
	}
}

// opCtx bounds one NATS request: by ctx, by timeout, and by the connection
// staying up. Its cause is errConnLost when the connection dropped.
func (j *JetStream) opCtx(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	j.mu.Lock()
	conn := j.connCtx
	j.mu.Unlock()
	if conn.Err() != nil && j.nc.IsConnected() {
		j.refreshConn() // reconnected before the status event arrived
		j.mu.Lock()
		conn = j.connCtx
		j.mu.Unlock()
	}
	ctx, cancelCause := context.WithCancelCause(ctx)
	ctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	stop := context.AfterFunc(conn, func() { cancelCause(context.Cause(conn)) })
	return ctx, func() {
		stop()
		cancelTimeout()
		cancelCause(nil)
	}
}

func (j *JetStream) closeConn() {
	if j.ownsConn {
		j.nc.Close()
	}
}

// Epoch returns the epoch of the stream's current incarnation.
func (j *JetStream) Epoch() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.epoch
}

// Stats returns a snapshot of this node: its subscriptions and the last
// position it delivered. History sizes live in NATS (stream info).
func (j *JetStream) Stats() Stats {
	j.mu.Lock()
	defer j.mu.Unlock()
	return Stats{Subscriptions: j.hub.subs, Head: Position{Epoch: j.epoch, Offset: j.head}}
}

// streamEpoch derives the epoch from the stream's identity: its name and
// creation time, which JetStream keeps across server restarts and which all
// replicas of a clustered stream agree on.
func streamEpoch(name string, created time.Time) string {
	h := sha256.New()
	h.Write([]byte(name))
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(created.UnixNano()))
	h.Write(b[:])
	sum := h.Sum(nil)
	return epochEncoding.EncodeToString(sum[:8]) // 13 characters of [a-z2-7]
}

var epochEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

func (j *JetStream) streamConfig() jetstream.StreamConfig {
	storage := jetstream.FileStorage
	if j.cfg.MemoryStorage {
		storage = jetstream.MemoryStorage
	}
	return jetstream.StreamConfig{
		Name:        j.cfg.Stream,
		Description: "HoneyDo Realtime events; managed by realtimed",
		Subjects:    []string{j.prefix + ".>"},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      j.cfg.History.MaxAge,
		MaxMsgs:     int64(j.cfg.History.MaxEvents),
		MaxBytes:    j.cfg.History.MaxBytes,
		Storage:     storage,
		Replicas:    j.cfg.Replicas,
		// Publish retries its own attempt under one message id; the
		// window only has to outlast PublishTimeout.
		Duplicates: min(j.cfg.History.MaxAge, 2*time.Minute),
	}
}

// ensureStream creates the stream, or updates the limits this broker
// manages on an existing one, and logs what it did.
func (j *JetStream) ensureStream(ctx context.Context) (*jetstream.StreamInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	want := j.streamConfig()
	action := "created"
	s, err := j.js.Stream(ctx, want.Name)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		s, err = j.js.CreateStream(ctx, want)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) { // another node won the race
			s, err = j.js.Stream(ctx, want.Name)
			action = "found"
		}
	case err == nil:
		have := s.CachedInfo().Config
		next := have
		next.Subjects = want.Subjects
		next.Retention, next.Discard = want.Retention, want.Discard
		next.MaxAge, next.MaxMsgs, next.MaxBytes = want.MaxAge, want.MaxMsgs, want.MaxBytes
		next.Replicas, next.Duplicates = want.Replicas, want.Duplicates
		if have.Storage != want.Storage {
			j.log.Warn("stream storage differs from the configured one and cannot be changed in place; keeping it",
				"have", have.Storage.String(), "want", want.Storage.String())
		}
		action = "unchanged"
		if !slices.Equal(have.Subjects, next.Subjects) || have.Retention != next.Retention || have.Discard != next.Discard ||
			have.MaxAge != next.MaxAge || have.MaxMsgs != next.MaxMsgs || have.MaxBytes != next.MaxBytes ||
			have.Replicas != next.Replicas || have.Duplicates != next.Duplicates {
			s, err = j.js.UpdateStream(ctx, next)
			action = "updated"
		}
	}
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrJetStreamNotEnabled) ||
			errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrNoStreamResponse) {
			return nil, fmt.Errorf("%w: JetStream stream %s: %v", ErrUnavailable, want.Name, err)
		}
		return nil, fmt.Errorf("broker: JetStream stream %s: %w", want.Name, err)
	}
	info := s.CachedInfo()
	cfg := info.Config
	j.log.Info("jetstream stream "+action,
		"subjects", strings.Join(cfg.Subjects, ","), "replicas", cfg.Replicas, "storage", cfg.Storage.String(),
		"max_age", cfg.MaxAge, "max_msgs", cfg.MaxMsgs, "max_bytes", cfg.MaxBytes,
		"epoch", streamEpoch(cfg.Name, info.Created), "first_seq", info.State.FirstSeq, "last_seq", info.State.LastSeq,
		"messages", info.State.Msgs)
	return info, nil
}

// streamInfo fetches the stream's current state; a missing stream is
// recreated.
func (j *JetStream) streamInfo(ctx context.Context) (*jetstream.StreamInfo, error) {
	ctx, cancel := j.opCtx(ctx, 5*time.Second)
	defer cancel()
	s, err := j.js.Stream(ctx, j.cfg.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		j.log.Warn("stream is gone; recreating it")
		return j.ensureStream(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: stream info: %v", ErrUnavailable, err)
	}
	return s.CachedInfo(), nil
}

// startConsumer (re)starts this node's ordered consumer after the last
// sequence it delivered. If the stream changed identity, or events it had
// not delivered yet left the stream, every live subscription ends first so
// that its client resumes and learns what it lost.
func (j *JetStream) startConsumer(info *jetstream.StreamInfo) error {
	epoch := streamEpoch(info.Config.Name, info.Created)
	first, last := info.State.FirstSeq, info.State.LastSeq

	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return ErrClosed
	}
	var ended []*Subscription
	switch {
	case j.epoch == "":
		j.epoch, j.head = epoch, last
	case epoch != j.epoch:
		j.log.Warn("stream was recreated: new epoch; ending live streams so clients resync", "old_epoch", j.epoch, "epoch", epoch)
		ended = j.detachAllLocked()
		j.epoch, j.head = epoch, last
	case last > j.head && first > j.head+1:
		j.log.Warn("events left the stream before this node delivered them; ending live streams so clients resume",
			"delivered", j.head, "first_seq", first, "last_seq", last)
		ended = j.detachAllLocked()
		j.head = first - 1
	case last < j.head:
		// The stream lost events it had acknowledged (e.g. an R1 memory
		// stream whose server restarted) without a new identity.
		j.log.Warn("stream is behind this node; ending live streams so clients resync", "delivered", j.head, "last_seq", last)
		ended = j.detachAllLocked()
		j.head = last
	}
	j.gen++
	gen, start := j.gen, j.head+1
	j.needRestart = false
	j.wakeWaitersLocked()
	j.mu.Unlock()
	for _, s := range ended {
		s.end(fmt.Errorf("%w: events were lost between NATS and this node; reconnect with your cursor", ErrUnavailable))
	}

	cons, err := j.js.OrderedConsumer(j.ctx, j.cfg.Stream, jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{j.prefix + ".>"},
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       start,
		InactiveThreshold: time.Minute,
	})
	if err != nil {
		return fmt.Errorf("%w: creating the node consumer: %v", ErrUnavailable, err)
	}
	cc, err := cons.Consume(func(msg jetstream.Msg) { j.dispatch(gen, epoch, msg) },
		// Short heartbeats: a consumer whose NATS server died is noticed
		// and recreated elsewhere within a few seconds.
		jetstream.PullExpiry(5*time.Second),
		jetstream.PullHeartbeat(time.Second),
		jetstream.ConsumeErrHandler(j.consumeError))
	if err != nil {
		return fmt.Errorf("%w: starting the node consumer: %v", ErrUnavailable, err)
	}
	j.mu.Lock()
	j.cc = cc
	j.ready.notify()
	j.mu.Unlock()
	j.log.Debug("node consumer started", "epoch", epoch, "start_seq", start)
	return nil
}

func (j *JetStream) stopConsumer() {
	j.mu.Lock()
	cc := j.cc
	j.cc = nil
	j.gen++ // whatever the old consumer still hands over is dropped
	j.ready.notify()
	j.mu.Unlock()
	if cc != nil {
		cc.Stop()
	}
}

func (j *JetStream) consumeError(_ jetstream.ConsumeContext, err error) {
	if j.ctx.Err() != nil {
		return
	}
	j.log.Debug("node consumer", "err", err)
	if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrStreamNotFound) ||
		errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrNoHeartbeat) {
		j.poke()
	}
}

func (j *JetStream) poke() {
	select {
	case j.kick <- struct{}{}:
	default:
	}
}

// supervise checks the stream every few seconds (and when poked): a new
// identity, events that expired before this node delivered them, or a
// skipped sequence restart the consumer. The ordered consumer itself
// recovers from reconnects and lost heartbeats.
func (j *JetStream) supervise() {
	defer close(j.done)
	defer j.stopConsumer()
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	running := true
	backoff := 100 * time.Millisecond
	for {
		if !running {
			info, err := j.streamInfo(j.ctx)
			j.setStreamErr(err)
			if err == nil {
				err = j.startConsumer(info)
			}
			if err == nil {
				running, backoff = true, 100*time.Millisecond
			} else if j.ctx.Err() == nil {
				j.log.Warn("node consumer not running; retrying", "err", err, "in", backoff)
				select {
				case <-time.After(backoff):
				case <-j.ctx.Done():
					return
				}
				backoff = min(2*backoff, 5*time.Second)
				continue
			}
		}
		select {
		case <-j.ctx.Done():
			return
		case <-tick.C:
		case <-j.kick:
		}
		j.mu.Lock()
		restart := j.needRestart
		epoch, head := j.epoch, j.head
		j.mu.Unlock()
		if !restart && j.nc.IsConnected() {
			info, err := j.streamInfo(j.ctx)
			j.setStreamErr(err)
			if err != nil {
				continue // the client reconnects; the ordered consumer follows
			}
			st := info.State
			restart = streamEpoch(info.Config.Name, info.Created) != epoch ||
				(st.LastSeq > head && st.FirstSeq > head+1) || st.LastSeq < head
		}
		if restart {
			j.stopConsumer()
			running = false
		}
	}
}

// setStreamErr records the outcome of the supervisor's look at the stream,
// for Ready. A failure caused by Close is not an outage.
func (j *JetStream) setStreamErr(err error) {
	if j.ctx.Err() != nil {
		return
	}
	if err != nil && !errors.Is(err, ErrUnavailable) {
		err = fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if (err == nil) != (j.streamErr == nil) {
		j.ready.notify()
	}
	j.streamErr = err
}

// Ready implements [Broker]. The node can serve while it is connected to
// NATS, its consumer runs (it feeds every live subscription) and the
// supervisor's last look at the stream succeeded; the supervisor looks
// every 2 seconds and right after a reconnect.
func (j *JetStream) Ready() (<-chan struct{}, error) {
	// The channel comes first: a change after this point closes it. The
	// connection's own lock is never taken under j.mu.
	j.mu.Lock()
	ch := j.ready.wait()
	j.mu.Unlock()
	connected, status := j.nc.IsConnected(), j.nc.Status()
	j.mu.Lock()
	defer j.mu.Unlock()
	switch {
	case j.closed:
		return ch, ErrClosed
	case !connected:
		return ch, fmt.Errorf("%w: not connected to NATS (%s)", ErrUnavailable, status)
	case j.cc == nil:
		return ch, fmt.Errorf("%w: this node's event feed from the stream is not running", ErrUnavailable)
	case j.streamErr != nil:
		return ch, j.streamErr
	}
	return ch, nil
}

// dispatch hands one event from the node consumer to the hub and to the
// resumes being assembled. It runs on the consumer's goroutine, one event
// at a time, in stream order.
func (j *JetStream) dispatch(gen uint64, epoch string, msg jetstream.Msg) {
	md, err := msg.Metadata()
	if err != nil {
		j.log.Warn("node consumer: message without metadata", "err", err)
		return
	}
	seq := md.Sequence.Stream
	m, derr := j.decode(epoch, seq, msg.Subject(), msg.Headers(), msg.Data())

	j.mu.Lock()
	if gen != j.gen || j.closed || seq <= j.head {
		// An old consumer's leftovers, or a redelivery after a reset.
		j.mu.Unlock()
		return
	}
	if seq != j.head+1 {
		// Never deliver out of order: drop this consumer and let the
		// supervisor restart one after head, ending live streams only if
		// the missing events really left the stream.
		j.gen++
		j.needRestart = true
		j.mu.Unlock()
		j.log.Warn("node consumer skipped sequences; restarting it", "delivered", j.head, "got", seq)
		j.poke()
		return
	}
	j.head = seq
	var slow []*Subscription
	if derr != nil {
		j.log.Warn("dropping a message this broker cannot read", "seq", seq, "subject", msg.Subject(), "err", derr)
	} else {
		slow = j.hub.deliver(m, nil)
		// A slow subscription must not get later events once it missed
		// one: leave the hub now, end it after unlocking.
		for _, s := range slow {
			j.hub.remove(s)
		}
		for p := range j.pending[m.Target.Room] {
			p.add(m)
		}
	}
	if len(j.waiters) > 0 {
		j.wakeWaitersLocked()
	}
	j.mu.Unlock()
	for _, s := range slow {
		s.end(ErrSlowConsumer)
	}
}

// decode turns a stored event into a Message: the cursor (and, if the
// publisher left it empty, the id) come from the stream sequence, which only
// exists once JetStream stored the event.
func (j *JetStream) decode(epoch string, seq uint64, subject string, hdr nats.Header, data []byte) (*Message, error) {
	r, err := subjectRoom(j.prefix, subject)
	if err != nil {
		return nil, err
	}
	ev := new(realtimev1.Event)
	if err := proto.Unmarshal(data, ev); err != nil {
		return nil, err
	}
	return stamp(Position{Epoch: epoch, Offset: seq}, Target{Room: r, ExceptUserID: hdr.Get(headerExceptUser)}, ev, ev.GetTime().AsTime())
}

// detachAllLocked removes every subscription from the hub and fails every
// pending resume; the caller ends the returned subscriptions after
// unlocking.
func (j *JetStream) detachAllLocked() []*Subscription {
	subs := j.hub.all()
	for _, s := range subs {
		j.hub.remove(s)
	}
	for _, set := range j.pending {
		for p := range set {
			if p.err == nil {
				p.err = fmt.Errorf("%w: the node's event feed was reset during the resume", ErrUnavailable)
			}
		}
	}
	return subs
}

func (j *JetStream) wakeWaitersLocked() {
	for ch, seq := range j.waiters {
		if j.head >= seq || j.closed {
			close(ch)
			delete(j.waiters, ch)
		}
	}
}

// Publish implements [Broker]. It returns after JetStream stored the event
// (on a quorum of replicas); the event then reaches every node through its
// consumer. With NATS unreachable it fails at once with an error wrapping
// [ErrUnavailable].
//
// After an Unavailable the event may or may not have been stored (the ack
// can be lost with the connection). An event whose id the caller set is
// idempotent: publishing it again to the same target within the stream's
// duplicate window (the history age, at most 2 minutes) stores it once and
// returns its original position. Without an id a retry may duplicate it.
func (j *JetStream) Publish(ctx context.Context, target Target, ev *realtimev1.Event) (*Message, error) {
	if err := validateForPublish(target, ev); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	j.mu.Lock()
	closed, epoch := j.closed, j.epoch
	j.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	if !j.nc.IsConnected() {
		return nil, fmt.Errorf("%w: not connected to NATS (%s)", ErrUnavailable, j.nc.Status())
	}
	ev.Time = timestamppb.Now()
	data, err := proto.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidEvent, err)
	}
	msg := nats.NewMsg(roomSubject(j.prefix, target.Room))
	msg.Data = data
	if target.ExceptUserID != "" {
		msg.Header.Set(headerExceptUser, target.ExceptUserID)
	}
	ctx, cancel := j.opCtx(ctx, j.cfg.PublishTimeout)
	defer cancel()
	// One message id for every attempt: if an ack is lost and we retry,
	// JetStream stores the event once and acks the retry with its sequence.
	// An id chosen by the caller makes the id stable across the caller's
	// own retries too (scoped to the target, since a service may send one
	// id to several users).
	id := nuid.Next()
	if ev.Id != "" {
		id = "ev|" + msg.Subject + "|" + target.ExceptUserID + "|" + ev.Id
	}
	var ack *jetstream.PubAck
	for attempt := 0; ; attempt++ {
		ack, err = j.js.PublishMsg(ctx, msg, jetstream.WithMsgID(id), jetstream.WithExpectStream(j.cfg.Stream),
			jetstream.WithRetryAttempts(0))
		if err == nil || !retryablePublishError(err) || !j.nc.IsConnected() {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(min(time.Duration(attempt+1)*50*time.Millisecond, 500*time.Millisecond)):
			continue
		}
		break
	}
	if err != nil {
		ev.Time = nil // leave the event as it came, so that the caller may retry it
		if cerr := context.Cause(ctx); errors.Is(cerr, context.Canceled) {
			return nil, cerr // the caller gave up
		}
		// After a lost connection or a timeout the event may or may not
		// have been stored: like any Unavailable, the caller may retry.
		return nil, fmt.Errorf("%w: JetStream did not acknowledge the event: %v", ErrUnavailable, err)
	}
	return stamp(Position{Epoch: epoch, Offset: ack.Sequence}, target, ev, ev.Time.AsTime())
}

// retryablePublishError reports errors that a stream leader election or a
// reconnect can cause, after which the same publish may succeed.
func retryablePublishError(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.Code == 503 || apiErr.Code == 500
	}
	return errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, nats.ErrReconnectBufExceeded) || errors.Is(err, nats.ErrConnectionReconnecting)
}

// Subscribe implements [Broker].
//
// Resume method (join live first, buffer, replay, de-duplicate by position):
//  1. Wait until this node's consumer has delivered the cursor's sequence
//     (it may trail another node's publish by a moment). Then, under the
//     lock that dispatch holds, note head — the last sequence handed to the
//     hub — and register a pending resume that buffers live events of the
//     subscriber's rooms from head+1 on.
//  2. Read (cursor, head] from the stream with a short-lived consumer whose
//     filter subjects are exactly the subscriber's rooms, starting at
//     cursor+1: JetStream's per-subject index finds those events, so the
//     cost follows what is replayed, not the stream's size or other rooms.
//     Reading stops at head, by sequence.
//  3. Check that the stream's first sequence is still <= cursor+1 (events
//     leave only from the front): otherwise events were lost and the resume
//     reports [ResumeExpired].
//  4. Under the lock again: queue replay + buffer and add the subscription
//     to the hub. Replay holds sequences <= head, the buffer > head, live
//     delivery whatever dispatch hands over next: each event exactly once,
//     in stream order.
func (j *JetStream) Subscribe(ctx context.Context, opts SubscribeOptions) (*Subscription, error) {
	if len(opts.Rooms) == 0 {
		return nil, fmt.Errorf("broker: subscribe needs at least one room")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if !j.nc.IsConnected() {
		return nil, fmt.Errorf("%w: this node is not connected to NATS; try another node", ErrUnavailable)
	}
	s := newSubscription(opts)
	s.unsubscribe = j.remove
	since := opts.Since

	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return nil, ErrClosed
	}
	epoch, head := j.epoch, j.head
	if since == nil || since.Epoch != epoch || since.Offset == head {
		s.Start = Position{Epoch: epoch, Offset: head}
		switch {
		case since == nil:
		case since.Epoch != epoch:
			s.Resume = ResumeEpochChanged
		default: // nothing to replay: the cursor is this node's head
			s.Resume = ResumeOK
		}
		j.hub.add(s)
		j.mu.Unlock()
		return s, nil
	}
	j.mu.Unlock()

	if since.Offset > head {
		info, err := j.streamInfo(ctx)
		if err != nil {
			return nil, err
		}
		if streamEpoch(info.Config.Name, info.Created) != epoch {
			return nil, fmt.Errorf("%w: the stream is changing identity; retry", ErrUnavailable)
		}
		if since.Offset > info.State.LastSeq {
			return nil, fmt.Errorf("%w: it points past the end of the stream", ErrInvalidCursor)
		}
		if err := j.waitHead(ctx, since.Offset); err != nil {
			return nil, err
		}
	}

	p := &pendingResume{sub: s, limit: s.limit}
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return nil, ErrClosed
	}
	if j.epoch != since.Epoch {
		j.mu.Unlock()
		return nil, fmt.Errorf("%w: the stream changed identity during the resume; retry", ErrUnavailable)
	}
	upTo := j.head
	for _, r := range opts.Rooms {
		set := j.pending[r]
		if set == nil {
			set = make(map[*pendingResume]struct{})
			j.pending[r] = set
		}
		set[p] = struct{}{}
	}
	j.mu.Unlock()

	replay, expired, err := j.replay(ctx, opts, since.Offset, upTo)

	j.mu.Lock()
	for _, r := range opts.Rooms {
		if set := j.pending[r]; set != nil {
			delete(set, p)
			if len(set) == 0 {
				delete(j.pending, r)
			}
		}
	}
	switch {
	case j.closed:
		err = ErrClosed
	case err == nil:
		err = p.err
	}
	if err != nil {
		j.mu.Unlock()
		return nil, err
	}
	if expired {
		s.Resume = ResumeExpired
		s.Start = Position{Epoch: since.Epoch, Offset: upTo}
		replay = nil
	} else {
		s.Resume = ResumeOK
		s.Start = *since
	}
	s.preload(append(replay, p.buf...))
	j.hub.add(s)
	j.mu.Unlock()
	return s, nil
}

// waitHead waits until this node's consumer has delivered seq.
func (j *JetStream) waitHead(ctx context.Context, seq uint64) error {
	j.mu.Lock()
	if j.head >= seq {
		j.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	j.waiters[ch] = seq
	j.mu.Unlock()
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	var err error
	select {
	case <-ch:
		j.mu.Lock()
		if j.closed {
			err = ErrClosed
		}
		j.mu.Unlock()
		return err
	case <-ctx.Done():
		err = ctx.Err()
	case <-t.C:
		err = fmt.Errorf("%w: this node is behind the stream; try again", ErrUnavailable)
	}
	j.mu.Lock()
	delete(j.waiters, ch)
	j.mu.Unlock()
	return err
}

// replay reads the events of opts.Rooms with sequences in (after, upTo]
// from the stream, leaving out those that except the subscriber. expired
// reports that some of them had already left the stream.
func (j *JetStream) replay(ctx context.Context, opts SubscribeOptions, after, upTo uint64) (msgs []*Message, expired bool, err error) {
	ctx, cancel := j.opCtx(ctx, 10*time.Second)
	defer cancel()
	filters := make([]string, 0, len(opts.Rooms))
	for _, r := range opts.Rooms {
		subj := roomSubject(j.prefix, r)
		if !slices.Contains(filters, subj) {
			filters = append(filters, subj)
		}
	}
	if upTo <= after {
		return nil, false, nil
	}
	msgs, err = j.fetchRange(ctx, filters, opts.UserID, after+1, upTo)
	if err != nil {
		if errors.Is(context.Cause(ctx), context.Canceled) {
			return nil, false, context.Canceled
		}
		return nil, false, fmt.Errorf("%w: reading history: %v", ErrUnavailable, err)
	}
	// Events leave a stream from the front only: if the first sequence is
	// still at most after+1 now, everything we read was complete.
	info, err := j.streamInfo(ctx)
	if err != nil {
		return nil, false, err
	}
	if info.State.FirstSeq > after+1 {
		return nil, true, nil
	}
	return msgs, false, nil
}

func (j *JetStream) fetchRange(ctx context.Context, filters []string, userID string, from, upTo uint64) ([]*Message, error) {
	cfg := jetstream.ConsumerConfig{
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       from,
		AckPolicy:         jetstream.AckNonePolicy,
		MemoryStorage:     true,
		Replicas:          1,
		InactiveThreshold: 30 * time.Second,
	}
	if len(filters) == 1 {
		cfg.FilterSubject = filters[0]
	} else {
		cfg.FilterSubjects = filters
	}
	cons, err := j.js.CreateConsumer(ctx, j.cfg.Stream, cfg)
	if err != nil {
		return nil, err
	}
	name := cons.CachedInfo().Name
	defer func() {
		// Deleting is housekeeping (the server would drop it when idle):
		// don't make the subscriber wait for it. The WaitGroup may only
		// grow while Close is not waiting on it; once closed, the consumer
		// is left to its InactiveThreshold.
		j.mu.Lock()
		closed := j.closed
		if !closed {
			j.bg.Add(1)
		}
		j.mu.Unlock()
		if closed {
			return
		}
		go func() {
			defer j.bg.Done()
			dctx, cancel := context.WithTimeout(j.ctx, 5*time.Second)
			defer cancel()
			_ = j.js.DeleteConsumer(dctx, j.cfg.Stream, name)
		}()
	}()
	pending := cons.CachedInfo().NumPending
	var out []*Message
	epoch := j.Epoch()
	for pending > 0 {
		batch, err := cons.Fetch(int(min(pending, 256)), jetstream.FetchMaxWait(3*time.Second))
		if err != nil {
			return nil, err
		}
		got := 0
		for msg := range batch.Messages() {
			got++
			md, err := msg.Metadata()
			if err != nil {
				return nil, err
			}
			seq := md.Sequence.Stream
			if seq > upTo {
				return out, nil
			}
			pending = md.NumPending
			m, err := j.decode(epoch, seq, msg.Subject(), msg.Headers(), msg.Data())
			if err != nil {
				j.log.Warn("replay: skipping a message this broker cannot read", "seq", seq, "err", err)
			} else if !m.Target.excludes(userID) {
				out = append(out, m)
			}
			if seq == upTo {
				return out, nil
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return nil, err
		}
		if got == 0 {
			return nil, errors.New("history read stalled")
		}
	}
	return out, nil
}

func (j *JetStream) remove(s *Subscription) {
	j.mu.Lock()
	j.hub.remove(s)
	j.mu.Unlock()
}

// Close implements [Closer]: it ends every subscription with ErrClosed,
// stops the node consumer and, unless the connection was given in
// JetStreamConfig.Conn, closes it.
func (j *JetStream) Close() error {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return nil
	}
	j.closed = true
	subs := j.detachAllLocked()
	j.wakeWaitersLocked()
	j.ready.notify()
	j.mu.Unlock()
	for _, s := range subs {
		s.end(ErrClosed)
	}
	j.cancel()
	<-j.done
	j.bg.Wait()
	j.closeConn()
	return nil
}

// redactURL drops credentials from NATS URLs before they are logged.
func redactURL(urls string) string {
	parts := strings.Split(urls, ",")
	for i, u := range parts {
		if at := strings.LastIndex(u, "@"); at >= 0 {
			if scheme := strings.Index(u, "://"); scheme >= 0 && scheme < at {
				parts[i] = u[:scheme+3] + "***" + u[at:]
			} else {
				parts[i] = "***" + u[at:]
			}
		}
	}
	return strings.Join(parts, ",")
}
