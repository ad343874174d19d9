package benchapi

import (
	"context"
	"math"
	"math/rand/v2"
	"runtime"
	"strconv"
	"time"

	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	systemv1 "github.com/honeydo/realtime/gen/honeydo/system/v1"
	"github.com/honeydo/realtime/internal/broker"
	"github.com/honeydo/realtime/internal/room"
)

// publishRequest is the body of POST /bench/publish, as the peers take it.
type publishRequest struct {
	Mode       string  `json:"mode"` // "room" or "users"
	Room       string  `json:"room"`
	Users      int     `json:"users"`
	Rate       float64 `json:"rate"` // messages per second; 0 = as fast as accepted
	DurationMs int     `json:"duration_ms"`
	Size       int     `json:"size"`
	Batch      int     `json:"batch"`
	MaxCount   int64   `json:"max_count"`
}

// publishResponse is the answer of POST /bench/publish.
type publishResponse struct {
	Published int64   `json:"published"`
	Errors    int64   `json:"errors"`
	ElapsedMs float64 `json:"elapsed_ms"`
}

// publish runs the publisher, bounded by count and deadline, with the
// peers' loops: paced publishers wake every 1 ms and send what they owe;
// rate 0 publishes batch events, then yields the processor, repeatedly.
func publish(ctx context.Context, b broker.Broker, p publishRequest) publishResponse {
	if p.DurationMs <= 0 {
		p.DurationMs = 1000
	}
	if p.Size <= 0 {
		p.Size = 200
	}
	if p.Batch <= 0 {
		p.Batch = 1
	}
	if p.Users <= 0 {
		p.Users = 1
	}
	if p.Room == "" {
		p.Room = "bench"
	}
	dur := time.Duration(p.DurationMs) * time.Millisecond
	maxCount := p.MaxCount
	if p.Rate > 0 {
		maxCount = int64(math.Ceil(p.Rate * dur.Seconds()))
	} else if maxCount <= 0 {
		maxCount = 50_000_000
	}
	extra := room.Extra(p.Room)
	var userRooms []room.Name
	if p.Mode == "users" {
		userRooms = make([]room.Name, p.Users)
		for i := range userRooms {
			userRooms[i] = room.User(strconv.Itoa(i))
		}
	}
	// The padding makes the encoded event about p.Size bytes, as the peers'
	// JSON payloads are.
	padding := make([]byte, max(0, p.Size-40))
	var seq, errs int64
	emit := func() {
		target := extra
		if userRooms != nil {
			target = userRooms[rand.IntN(len(userRooms))]
		}
		ev := &realtimev1.Event{Payload: &realtimev1.Event_Probe{Probe: &systemv1.Probe{
			SendTimeUnixMicros: time.Now().UnixMicro(),
			Seq:                uint64(seq),
			Target:             string(target),
			Padding:            padding,
		}}}
		if _, err := b.Publish(ctx, broker.Target{Room: target}, ev); err != nil {
			errs++
		}
		seq++
	}
	start := time.Now()
	deadline := start.Add(dur)
	if p.Rate > 0 {
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			now := time.Now()
			if now.After(deadline) {
				now = deadline
			}
			due := min(int64(now.Sub(start).Seconds()*p.Rate), maxCount)
			for seq < due {
				emit()
			}
			if !now.Before(deadline) || seq >= maxCount || ctx.Err() != nil {
				break
			}
			<-tick.C
		}
	} else {
		for seq < maxCount && time.Now().Before(deadline) && ctx.Err() == nil {
			for i := 0; i < p.Batch && seq < maxCount; i++ {
				emit()
			}
			runtime.Gosched()
		}
	}
	return publishResponse{Published: seq, Errors: errs, ElapsedMs: float64(time.Since(start).Microseconds()) / 1000}
}
