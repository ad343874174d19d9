package metrics

import (
	"context"

	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	"github.com/honeydo/realtime/internal/broker"
)

// InstrumentBroker returns b with its publishes counted by target kind.
// Pass the result both to the server and to the modules' Emitter, so that
// every publish, RPC or in-process, is counted once.
func InstrumentBroker(b broker.Broker, m *Metrics) broker.Broker {
	return &instrumentedBroker{Broker: b, m: m}
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
