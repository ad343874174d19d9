package cluster

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/honeydo/realtime/internal/broker"
	"github.com/honeydo/realtime/internal/room"
	"github.com/honeydo/realtime/internal/testkit"
	"github.com/honeydo/realtime/internal/testkit/natstest"
)

// Cross-node fan-out benchmarks: the same household of subscriptions spread
// over three nodes, events published on node 1.
//
//	memory          one in-memory broker holding every subscription (the
//	                single-node baseline: no network hop)
//	jetstream-1node one JetStream broker holding every subscription (the
//	                cost of the NATS round trip alone)
//	jetstream-3node three JetStream brokers (three realtimed nodes) on one
//	                NATS server, a third of the subscriptions on each
//
// Throughput publishes from 8 goroutines as fast as acks come back and
// reports deliveries per second (events x subscriptions). Latency publishes
// 1,000 events per second from one goroutine and reports the publish-to-
// queue latency percentiles over every delivery that was sampled (one
// subscription samples each event). Run:
//
//	go test -run='^$' -bench=CrossNode -benchtime=5000x ./internal/cluster/
//
// Results are recorded in docs/CLUSTER.md.
func BenchmarkCrossNode(b *testing.B) {
	const subsPerNode = 100
	for _, backend := range []string{"memory", "jetstream-1node", "jetstream-3node"} {
		b.Run(backend+"/throughput", func(b *testing.B) {
			runFanOut(b, backend, subsPerNode, 8, 0)
		})
		b.Run(backend+"/latency-1000eps", func(b *testing.B) {
			runFanOut(b, backend, subsPerNode, 1, time.Millisecond)
		})
	}
}

// benchNodes returns the publishing broker and the brokers subscriptions go
// to.
func benchNodes(b *testing.B, backend string) (pub broker.Broker, nodes []broker.Broker) {
	b.Helper()
	switch backend {
	case "memory":
		m := broker.NewMemory(broker.MemoryConfig{})
		b.Cleanup(func() { m.Close() })
		return m, []broker.Broker{m, m, m}
	}
	n := natstest.Start(b)
	count := 1
	if backend == "jetstream-3node" {
		count = 3
	}
	for range count {
		j, err := broker.NewJetStream(context.Background(), broker.JetStreamConfig{URL: n.URL(), Logger: testkit.Logger(b)})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { j.Close() })
		nodes = append(nodes, j)
	}
	for len(nodes) < 3 {
		nodes = append(nodes, nodes[0])
	}
	return nodes[0], nodes
}

func runFanOut(b *testing.B, backend string, subsPerNode, publishers int, interval time.Duration) {
	pub, nodes := benchNodes(b, backend)
	total := len(nodes) * subsPerNode
	var (
		wg        sync.WaitGroup
		delivered atomic.Int64
		mu        sync.Mutex
		samples   []time.Duration
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := b.N
	for i := range total {
		s, err := nodes[i%len(nodes)].Subscribe(ctx, broker.SubscribeOptions{
			UserID: fmt.Sprint("u", i), Rooms: []room.Name{room.User(fmt.Sprint("u", i)), room.Household("home")},
			QueueSize: max(events, broker.DefaultQueueSize),
		})
		if err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer s.Close()
			var buf []*broker.Message
			var mine []time.Duration
			got := 0
			for got < events {
				select {
				case <-s.Ready():
				case <-s.Done():
					b.Errorf("subscription ended: %v", s.Err())
					return
				case <-ctx.Done():
					return
				}
				buf = s.Next(buf)
				now := time.Now()
				for _, m := range buf {
					if m.Position.Offset%uint64(total) == uint64(i) {
						mine = append(mine, now.Sub(m.Time))
					}
				}
				got += len(buf)
				delivered.Add(int64(len(buf)))
			}
			mu.Lock()
			samples = append(samples, mine...)
			mu.Unlock()
		}()
	}

	b.ResetTimer()
	start := time.Now()
	var next atomic.Int64
	var pwg sync.WaitGroup
	for range publishers {
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			var tick <-chan time.Time
			if interval > 0 {
				t := time.NewTicker(interval)
				defer t.Stop()
				tick = t.C
			}
			for next.Add(1) <= int64(events) {
				if tick != nil {
					<-tick
				}
				if _, err := pub.Publish(ctx, broker.Target{Room: room.Household("home")}, notification("milk, eggs and bread were added to the shopping list")); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	pwg.Wait()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		b.Fatalf("only %d of %d deliveries", delivered.Load(), int64(events)*int64(total))
	}
	elapsed := time.Since(start)
	b.StopTimer()

	b.ReportMetric(float64(delivered.Load())/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(float64(events)/elapsed.Seconds(), "events/s")
	if len(samples) > 0 {
		slices.Sort(samples)
		pct := func(p float64) float64 {
			return float64(samples[min(len(samples)-1, int(p*float64(len(samples))))].Microseconds())
		}
		b.ReportMetric(pct(0.50), "p50-µs")
		b.ReportMetric(pct(0.99), "p99-µs")
	}
}
