// Package metrics defines realtimed's Prometheus metrics in one place, so
// that their names and labels are documented together (the README's
// Metrics section lists them) and every collector is registered exactly once.
//
// A Metrics is safe for concurrent use. The zero cost path matters: the
// delivery counters are updated once per frame, not once per event, and the
// latency histogram is observed per event with a single atomic add.
package metrics

import (
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds every collector realtimed exports.
type Metrics struct {
	registry *prometheus.Registry

	// OpenStreams counts open Subscribe streams.
	OpenStreams prometheus.Gauge
	// Subscriptions counts joined rooms of open streams by room kind: user,
	// household, broadcast, room or other (room.Kind, a fixed set whatever
	// room names tokens carry).
	Subscriptions *prometheus.GaugeVec
	// Published counts events accepted by the broker, by target kind
	// (room.Kind).
	Published *prometheus.CounterVec
	// PublishErrors counts publishes the broker refused, by target kind.
	PublishErrors *prometheus.CounterVec
	// Delivered counts events written to streams.
	Delivered prometheus.Counter
	// Frames counts event frames written to streams (Delivered/Frames is
	// the mean batch size).
	Frames prometheus.Counter
	// StreamsClosed counts ended streams by reason.
	StreamsClosed *prometheus.CounterVec
	// Resumes counts Subscribe calls by resume result: none, resumed,
	// expired, epoch_changed.
	Resumes *prometheus.CounterVec
	// DeliveryLatency is the time from the broker accepting an event to the
	// stream writing it, in seconds.
	DeliveryLatency prometheus.Histogram
	// AuthFailures counts rejected credentials by reason.
	AuthFailures *prometheus.CounterVec
	// ConnsRefused counts connections closed at accept because their
	// source address was over budget, by reason (addr_budget,
	// unauthenticated_budget).
	ConnsRefused *prometheus.CounterVec

	// rpcs holds the per-RPC collectors that [Metrics.RPCInterceptor]
	// and [Metrics.RPCRefused] update (rpc.go).
	rpcs *rpcSet
}

// New creates the collectors and registers them, with the Go runtime and
// process collectors, on a registry of its own.
func New() *Metrics {
	r := prometheus.NewRegistry()
	f := func(c prometheus.Collector) { r.MustRegister(c) }
	m := &Metrics{
		registry: r,
		OpenStreams: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "realtime_open_streams", Help: "Open Subscribe streams.",
		}),
		Subscriptions: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "realtime_subscriptions", Help: "Rooms joined by open streams, by room kind.",
		}, []string{"room_kind"}),
		Published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "realtime_events_published_total", Help: "Events accepted by the broker, by target kind.",
		}, []string{"target_kind"}),
		PublishErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "realtime_publish_errors_total", Help: "Publishes the broker refused, by target kind.",
		}, []string{"target_kind"}),
		Delivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "realtime_events_delivered_total", Help: "Events written to streams.",
		}),
		Frames: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "realtime_event_frames_total", Help: "Event batch frames written to streams.",
		}),
		StreamsClosed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "realtime_streams_closed_total", Help: "Ended streams by reason (client_gone, slow_consumer, token_expired, shutdown, write_error, broker_closed, closed).",
		}, []string{"reason"}),
		Resumes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "realtime_subscribe_resumes_total", Help: "Subscribe calls by resume result (none, resumed, expired, epoch_changed).",
		}, []string{"result"}),
		DeliveryLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "realtime_delivery_latency_seconds",
			Help:    "Time from the broker accepting an event to its stream writing it.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
		AuthFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "realtime_auth_failures_total", Help: "Rejected credentials by reason.",
		}, []string{"reason"}),
		ConnsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "realtime_connections_refused_total", Help: "Connections closed at accept because their source address was over budget, by reason (addr_budget, unauthenticated_budget).",
		}, []string{"reason"}),
	}
	m.rpcs = newRPCSet()
	for _, c := range []prometheus.Collector{m.OpenStreams, m.Subscriptions, m.Published, m.PublishErrors, m.Delivered, m.Frames, m.StreamsClosed, m.Resumes, m.DeliveryLatency, m.AuthFailures, m.ConnsRefused, m.rpcs.started, m.rpcs.duration} {
		f(c)
	}
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

// Gather returns the current values, for tests.
func (m *Metrics) Gather() (map[string]float64, error) {
	families, err := m.registry.Gather()
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, fam := range families {
		for _, metric := range fam.GetMetric() {
			name := fam.GetName()
			var labels []string
			for _, l := range metric.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			if len(labels) > 0 {
				name += "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case metric.GetCounter() != nil:
				out[name] = metric.GetCounter().GetValue()
			case metric.GetGauge() != nil:
				out[name] = metric.GetGauge().GetValue()
			case metric.GetHistogram() != nil:
				out[name+"_count"] = float64(metric.GetHistogram().GetSampleCount())
			}
		}
	}
	return out, nil
}
