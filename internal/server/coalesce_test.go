package server

import (
	"context"
	"testing"
	"time"

	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	systemv1 "github.com/honeydo/realtime/gen/honeydo/system/v1"
	"github.com/honeydo/realtime/internal/broker"
	"github.com/honeydo/realtime/internal/room"
)

func TestInBurst(t *testing.T) {
	last := time.Unix(1_700_000_000, 0)
	at := func(d time.Duration) *broker.Message { return &broker.Message{Time: last.Add(d)} }
	tests := []struct {
		name      string
		queued    int
		first     *broker.Message
		lastBatch int
		want      bool
	}{
		{"a lone event long after the last", 1, at(time.Second), 1, false},
		{"a lone event just past the gap", 1, at(burstGap), 1, false},
		{"the first event a stream writes", 1, at(0), 0, false}, // lastEvent is the zero time below
		{"a lone event right after the last", 1, at(burstGap - time.Microsecond), 1, true},
		{"two queued", 2, at(time.Hour), 1, true},
		{"the last batch had several", 1, at(time.Hour), 3, true},
		{"nothing queued", 0, nil, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lastEvent := last
			if tt.lastBatch == 0 {
				lastEvent = time.Time{}
			}
			if got := inBurst(tt.queued, tt.first, tt.lastBatch, lastEvent); got != tt.want {
				t.Fatalf("inBurst = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestCoalesce: outside a burst the stream writes at once; in one it yields
// while its queue grows, and stops when it stops growing, when the frame is
// full, or after maxCoalesceYields.
func TestCoalesce(t *testing.T) {
	tests := []struct {
		name       string
		burst      bool
		arrivals   int // events published by the first yields, one each
		wantYields int
	}{
		{"lone event", false, 5, 0},
		{"burst that ends", true, 3, 4},
		{"burst that goes on", true, 100, maxCoalesceYields},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			m := broker.NewMemory(broker.MemoryConfig{})
			defer m.Close()
			sub, err := m.Subscribe(ctx, broker.SubscribeOptions{UserID: "u", Rooms: []room.Name{room.User("u")}})
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			publish := func() {
				ev := &realtimev1.Event{Payload: &realtimev1.Event_Notification{Notification: &systemv1.Notification{Message: "x"}}}
				if _, err := m.Publish(ctx, broker.Target{Room: room.User("u")}, ev); err != nil {
					t.Fatal(err)
				}
			}
			publish()
			yields := 0
			coalesce(sub, tt.burst, maxCoalesceYields, func() {
				if yields < tt.arrivals {
					publish()
				}
				yields++
			})
			if yields != tt.wantYields {
				t.Fatalf("%d yields, want %d", yields, tt.wantYields)
			}
		})
	}
}
