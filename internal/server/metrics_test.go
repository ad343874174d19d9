package server_test

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/honeydo/realtime/internal/broker"
	"github.com/honeydo/realtime/internal/metrics"
	"github.com/honeydo/realtime/internal/module"
	"github.com/honeydo/realtime/internal/server"
	"github.com/honeydo/realtime/internal/testkit/poll"
)

func TestMetrics(t *testing.T) {
	m := metrics.New()
	var b broker.Broker
	srv := newTestServer(t, func(c *server.Config) {
		c.Metrics = m
		b = metrics.InstrumentBroker(c.Broker, m)
		c.Broker = b
	})
	emit := module.NewEmitter(b)
	s := subscribe(t, srv.realtimeClient(t, clientKinds[0], srv.Token(t, "alice", "home", time.Minute)), "")
	for i := range 3 {
		if _, err := emit.ToHousehold(context.Background(), "home", notification(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
		s.next(t)
	}
	want := map[string]float64{
		"realtime_open_streams":                                  1,
		"realtime_subscriptions{room_kind=household}":            1,
		"realtime_subscriptions{room_kind=user}":                 1,
		"realtime_subscriptions{room_kind=broadcast}":            1,
		"realtime_events_published_total{target_kind=household}": 3,
		"realtime_events_delivered_total":                        3,
		"realtime_subscribe_resumes_total{result=none}":          1,
		"realtime_delivery_latency_seconds_count":                3,
	}
	poll.Eventually(t, 5*time.Second, 10*time.Millisecond, func() error {
		got, err := m.Gather()
		if err != nil {
			return err
		}
		for k, v := range want {
			if got[k] != v {
				return fmt.Errorf("%s = %v, want %v", k, got[k], v)
			}
		}
		return nil
	})
	s.Close()
	poll.Eventually(t, 5*time.Second, 10*time.Millisecond, func() error {
		got, _ := m.Gather()
		if got["realtime_open_streams"] != 0 || got["realtime_streams_closed_total{reason=client_gone}"] != 1 || got["realtime_subscriptions{room_kind=user}"] != 0 {
			return fmt.Errorf("after close: open %v, closed %v", got["realtime_open_streams"], got["realtime_streams_closed_total{reason=client_gone}"])
		}
		return nil
	})
	// The exposition format, as Prometheus scrapes it.
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, name := range []string{"realtime_delivery_latency_seconds_bucket", "realtime_events_delivered_total 3", "go_goroutines"} {
		if !strings.Contains(string(body), name) {
			t.Errorf("/metrics lacks %q", name)
		}
	}
}
