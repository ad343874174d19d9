package metrics

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// UnknownProcedure is the procedure label (and type label) of a refused
// call whose path names no method of a service compiled into the binary.
// Paths come from callers, so they never become label values as written:
// the procedure label's values are a fixed set, whatever callers send.
const UnknownProcedure = "unknown"

// rpcDurationBuckets cover unary calls (a fraction of a millisecond to
// seconds) and the lifetimes of streams (minutes to an hour) in one
// histogram, at 18 buckets per procedure, type and code.
var rpcDurationBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 60, 300, 1800, 3600}

// rpcSet is the per-RPC collectors and a cache of each procedure's
// children, so that a call costs two map loads and two atomic adds rather
// than a label hash per collector.
type rpcSet struct {
	started  *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// procs maps a procedure path ("/pkg.Service/Method") to its
	// *procMetrics. It only ever holds procedures of handlers (their own
	// specs) or of compiled-in services, so it is bounded by the binary.
	procs   sync.Map
	unknown *procMetrics
}

func newRPCSet() *rpcSet {
	s := &rpcSet{
		started: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "realtime_rpc_started_total",
			Help: "RPCs started, by procedure and type (started minus handled is the RPCs in flight).",
		}, []string{"procedure", "type"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "realtime_rpc_duration_seconds",
			Help:    "RPCs handled, by procedure, type and code: the handler's time for unary calls, the lifetime of streams.",
			Buckets: rpcDurationBuckets,
		}, []string{"procedure", "type", "code"}),
	}
	s.unknown = s.newProc(UnknownProcedure, UnknownProcedure)
	return s
}

// procMetrics are one procedure's children. Its duration children, one per
// code, are made when a code first occurs, so a procedure exports only the
// codes it has answered with.
type procMetrics struct {
	procedure, typ string
	started        prometheus.Counter
	duration       *prometheus.HistogramVec
	byCode         [connect.CodeUnauthenticated + 1]atomic.Pointer[codeObserver]
}

type codeObserver struct{ prometheus.Observer }

func (s *rpcSet) newProc(procedure, typ string) *procMetrics {
	return &procMetrics{procedure: procedure, typ: typ, duration: s.duration, started: s.started.WithLabelValues(procedure, typ)}
}

// forSpec returns the children of a handler's procedure. A spec's
// procedure is the handler's own, never the caller's path, so it is
// trusted.
func (s *rpcSet) forSpec(spec connect.Spec) *procMetrics {
	if p, ok := s.procs.Load(spec.Procedure); ok {
		return p.(*procMetrics)
	}
	return s.store(spec.Procedure, streamTypeLabel(spec.StreamType))
}

// forPath returns the children of a caller's request path: a procedure
// already seen, or one of a service in the protobuf registry (compiled in),
// or else the shared unknown children.
func (s *rpcSet) forPath(path string) *procMetrics {
	if p, ok := s.procs.Load(path); ok {
		return p.(*procMetrics)
	}
	md := lookupMethod(path)
	if md == nil {
		return s.unknown
	}
	return s.store(path, methodTypeLabel(md))
}

func (s *rpcSet) store(procedure, typ string) *procMetrics {
	p, _ := s.procs.LoadOrStore(procedure, s.newProc(strings.TrimPrefix(procedure, "/"), typ))
	return p.(*procMetrics)
}

// observe records a handled call: its outcome and how long it took.
func (p *procMetrics) observe(err error, took time.Duration) {
	code := codeOf(err)
	o := p.byCode[code].Load()
	if o == nil {
		// Two first calls may both get here; WithLabelValues returns the
		// same child to both.
		o = &codeObserver{p.duration.WithLabelValues(p.procedure, p.typ, codeLabel(code))}
		p.byCode[code].Store(o)
	}
	o.Observe(took.Seconds())
}

// codeOf is the code a caller receives for err: 0 for success, and the
// connect codes 1-16 otherwise; context errors get the codes connect
// writes for them, and any other error is unknown.
func codeOf(err error) connect.Code {
	if err == nil {
		return 0
	}
	var ce *connect.Error
	switch {
	case errors.As(err, &ce):
		if c := ce.Code(); c >= connect.CodeCanceled && c <= connect.CodeUnauthenticated {
			return c
		}
	case errors.Is(err, context.Canceled):
		return connect.CodeCanceled
	case errors.Is(err, context.DeadlineExceeded):
		return connect.CodeDeadlineExceeded
	}
	return connect.CodeUnknown
}

func codeLabel(c connect.Code) string {
	if c == 0 {
		return "ok"
	}
	return c.String()
}

func streamTypeLabel(t connect.StreamType) string {
	switch t {
	case connect.StreamTypeUnary:
		return "unary"
	case connect.StreamTypeClient:
		return "client_stream"
	case connect.StreamTypeServer:
		return "server_stream"
	default:
		return "bidi_stream"
	}
}

func methodTypeLabel(md protoreflect.MethodDescriptor) string {
	switch {
	case md.IsStreamingClient() && md.IsStreamingServer():
		return "bidi_stream"
	case md.IsStreamingClient():
		return "client_stream"
	case md.IsStreamingServer():
		return "server_stream"
	}
	return "unary"
}

// lookupMethod resolves a request path "/pkg.Service/Method" in the
// protobuf registry, or returns nil.
func lookupMethod(path string) protoreflect.MethodDescriptor {
	service, method, ok := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	if !ok || !protoreflect.FullName(service).IsValid() || !protoreflect.Name(method).IsValid() {
		return nil
	}
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(service))
	if err != nil {
		return nil
	}
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if !ok {
		return nil
	}
	return sd.Methods().ByName(protoreflect.Name(method))
}

// RPCInterceptor returns a Connect handler interceptor that records every
// RPC it wraps in realtime_rpc_started_total and
// realtime_rpc_duration_seconds, labelled by procedure, type (unary,
// server_stream, client_stream, bidi_stream) and code ("ok" or a Connect
// code such as "permission_denied"). Put it first in the chain, so that it
// sees the calls the other interceptors refuse. A unary call's duration is
// its time in the interceptors and handler (connect has read the request
// message by then); a stream's is its lifetime. Clients' calls pass
// through unrecorded.
func (m *Metrics) RPCInterceptor() connect.Interceptor { return rpcInterceptor{m.rpcs} }

// RPCRefused records a call refused before any interceptor ran, such as
// one without a valid credential that the server answers without reading
// its body. path is the request's URL path; a path that names no method of
// a compiled-in service is recorded as [UnknownProcedure]. took is the time
// from the request to the refusal.
func (m *Metrics) RPCRefused(path string, err error, took time.Duration) {
	p := m.rpcs.forPath(path)
	p.started.Inc()
	p.observe(err, took)
}

type rpcInterceptor struct{ rpcs *rpcSet }

func (i rpcInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		spec := req.Spec()
		if spec.IsClient {
			return next(ctx, req)
		}
		p := i.rpcs.forSpec(spec)
		p.started.Inc()
		start := time.Now()
		res, err := next(ctx, req)
		p.observe(err, time.Since(start))
		return res, err
	}
}

func (i rpcInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (i rpcInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		p := i.rpcs.forSpec(conn.Spec())
		p.started.Inc()
		end := &streamEnd{p: p, start: time.Now()}
		err := next(context.WithValue(ctx, streamEndKey{}, end), conn)
		if !end.taken {
			p.observe(err, time.Since(end.start))
		}
		return err
	}
}

// streamEnd is where a stream's handler finds its RPC's observation when
// the stream outlives the handler.
type streamEnd struct {
	p     *procMetrics
	start time.Time
	taken bool // by the handler's goroutine, before it returns
}

type streamEndKey struct{}

// TakeStreamEnd is for a streaming handler that goes on serving its stream
// after it returns (it took over the connection): the interceptor then
// does not record the call when the handler returns, and the stream
// records it with the returned function, once, with the error it ends
// with. Call it on the handler's goroutine before the handler returns. It
// returns nil when ctx is not a handler's of [Metrics.RPCInterceptor], or
// when the end was taken already.
func TakeStreamEnd(ctx context.Context) func(error) {
	end, _ := ctx.Value(streamEndKey{}).(*streamEnd)
	if end == nil || end.taken {
		return nil
	}
	end.taken = true
	return func(err error) { end.p.observe(err, time.Since(end.start)) }
}
