package broker

import (
	"context"
	"fmt"
	"strings"
	"testing"

	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	systemv1 "github.com/honeydo/realtime/gen/honeydo/system/v1"
	"github.com/honeydo/realtime/internal/room"
)

// benchEvent is a notification of about 200 encoded bytes, the size the
// peers' workloads use.
func benchEvent() *realtimev1.Event {
	return &realtimev1.Event{Payload: &realtimev1.Event_Notification{Notification: &systemv1.Notification{Message: strings.Repeat("x", 160)}}}
}

// BenchmarkFanOut publishes to one room with n subscribers; every
// subscriber's queue is drained by the benchmark loop itself so that the
// numbers are the broker's cost: per publish, and per delivery.
func BenchmarkFanOut(b *testing.B) {
	for _, n := range []int{1, 100, 1000, 10000} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			m := NewMemory(MemoryConfig{History: HistoryLimits{MaxEvents: 1024}})
			defer m.Close()
			subs := make([]*Subscription, n)
			for i := range subs {
				s, err := m.Subscribe(context.Background(), SubscribeOptions{UserID: fmt.Sprint(i), Rooms: []room.Name{"room:bench"}, QueueSize: 1 << 20})
				if err != nil {
					b.Fatal(err)
				}
				subs[i] = s
			}
			bufs := make([][]*Message, n)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := m.Publish(ctx, Target{Room: "room:bench"}, benchEvent()); err != nil {
					b.Fatal(err)
				}
				if i%64 == 63 {
					for j, s := range subs {
						bufs[j] = s.Next(bufs[j])
					}
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/delivery")
		})
	}
}

// BenchmarkTargeted publishes each event to one of 10,000 user rooms.
func BenchmarkTargeted(b *testing.B) {
	const users = 10000
	m := NewMemory(MemoryConfig{History: HistoryLimits{MaxEvents: 1024}})
	defer m.Close()
	subs := make([]*Subscription, users)
	for i := range subs {
		s, err := m.Subscribe(context.Background(), SubscribeOptions{UserID: fmt.Sprint(i), Rooms: []room.Name{room.User(fmt.Sprint(i)), room.Household(fmt.Sprint(i / 4))}, QueueSize: 1 << 20})
		if err != nil {
			b.Fatal(err)
		}
		subs[i] = s
	}
	rooms := make([]room.Name, users)
	for i := range rooms {
		rooms[i] = room.User(fmt.Sprint(i))
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := i % users
		if _, err := m.Publish(ctx, Target{Room: rooms[k]}, benchEvent()); err != nil {
			b.Fatal(err)
		}
		subs[k].Next(nil)
	}
}

// BenchmarkSubscribeChurn measures subscribe + close of one stream.
func BenchmarkSubscribeChurn(b *testing.B) {
	m := NewMemory(MemoryConfig{})
	defer m.Close()
	rooms := []room.Name{room.User("u"), room.Household("h"), room.Broadcast}
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		s, err := m.Subscribe(ctx, SubscribeOptions{UserID: "u", Rooms: rooms})
		if err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
}
