package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	"github.com/honeydo/realtime/internal/broker"
)

// InstrumentBroker returns b with its publishes counted by target kind.
// Pass the result both to the server and to the modules' Emitter, so that
// every publish, RPC or in-process, is counted once.
//
// A broker whose publishers may wait for a subscriber behind (the in-memory
// one: [broker.Memory.PublishWaits]) also has those waits exported, once
// per Metrics: a second such broker on the same Metrics is not counted.
func InstrumentBroker(b broker.Broker, m *Metrics) broker.Broker {
	if w, ok := b.(publishWaiter); ok {
		m.exportPublishWaits(w)
	}
	return &instrumentedBroker{Broker: b, m: m}
}

// publishWaiter is a broker whose publishes may wait for a subscriber.
type publishWaiter interface {
	PublishWaits() (n int64, total time.Duration)
}

func (m *Metrics) exportPublishWaits(w publishWaiter) {
	waits := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "realtime_publish_waits_total",
		Help: "Publishes that waited for a stream more than a quarter of its queue behind (in-memory broker).",
	}, func() float64 { n, _ := w.PublishWaits(); return float64(n) })
	waited := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "realtime_publish_wait_seconds_total",
		Help: "Time publishes spent waiting for streams behind (in-memory broker).",
	}, func() float64 { _, d := w.PublishWaits(); return d.Seconds() })
	for _, c := range []prometheus.Collector{waits, waited} {
		if err := m.registry.Register(c); err != nil {
			return // already exported for another broker
		}
	}
}

type instrumentedBroker struct {
	broker.Broker
	m *Metrics
}

func (b *instrumentedBroker) Publish(ctx context.Context, target broker.Target, ev *realtimev1.Event) (*broker.Message, error) {
	msg, err := b.Broker.Publish(ctx, target, ev)
	kind := string(target.Room.Kind())
	if err != nil {
		b.m.PublishErrors.WithLabelValues(kind).Inc()
	} else {
		b.m.Published.WithLabelValues(kind).Inc()
	}
	return msg, err
}

// Close closes the wrapped broker if it holds resources.
func (b *instrumentedBroker) Close() error {
	if c, ok := b.Broker.(broker.Closer); ok {
		return c.Close()
	}
	return nil
}
