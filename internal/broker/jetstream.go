package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/honeydo/realtime/internal/room"
)

// DefaultStreamName is the JetStream stream a [JetStream] broker uses when
// JetStreamConfig.Stream is empty.
const DefaultStreamName = "HONEYDO_REALTIME"

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
// Concurrency: all methods may be called from any goroutine. mu guards
// the fields declared after it and is never held across a NATS request.
//
// The parts live in files of their own: the connection (jetstream_conn.go),
// the stream (jetstream_stream.go), the node consumer
// (jetstream_consumer.go) and its supervisor (jetstream_supervisor.go),
// Publish (jetstream_publish.go) and Subscribe with resume
// (jetstream_resume.go); subjects are in jetstream_subject.go.
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

var (
	_ Broker = (*JetStream)(nil)
	_ Closer = (*JetStream)(nil)
)

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
