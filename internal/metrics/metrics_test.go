package metrics

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkDeliveryAccounting is what a stream spends on metrics per frame
// it writes (see server.liveStream.deliver): one latency observation per
// event, then the delivered and frame counters. Divided by the events in a
// frame it is the metrics' cost per delivery, to set beside the server's
// measured CPU per delivery (docs/PERFORMANCE.md).
func BenchmarkDeliveryAccounting(b *testing.B) {
	m := New()
	for _, n := range []int{1, 15, 44} {
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			sent := time.Now()
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				now := time.Now()
				for range n {
					m.DeliveryLatency.Observe(now.Sub(sent).Seconds())
				}
				m.Delivered.Add(float64(n))
				m.Frames.Inc()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/delivery")
		})
	}
}
