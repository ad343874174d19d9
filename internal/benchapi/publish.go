package benchapi

import (
	"context"
	"math"
	"math/rand/v2"
	"runtime"
	"strconv"
	"sync"
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
	// Publishers share Rate (and MaxCount) between that many concurrent
	// publishers; 0 or 1: one. A broker whose Publish waits for a store's
	// ack (JetStream) publishes one event per round trip, which bounds one
	// publisher's rate below what W4 asks for.
	Publishers int `json:"publishers"`
}

// publishResponse is the answer of POST /bench/publish.
type publishResponse struct {
	Published int64   `json:"published"`
	Errors    int64   `json:"errors"`
	ElapsedMs float64 `json:"elapsed_ms"`
}

// publish runs p.Publishers publishers (at least one) concurrently, each
// with its share of the rate and count, and adds up what they did. Their
// events' Probe.Seq are disjoint: publisher i of n sends i, i+n, i+2n, ….
func publish(ctx context.Context, b broker.Broker, p publishRequest) publishResponse {
	n := max(p.Publishers, 1)
	share := p
	share.Rate = p.Rate / float64(n)
	if p.MaxCount > 0 {
		share.MaxCount = (p.MaxCount + int64(n) - 1) / int64(n)
	}
	start := time.Now()
	results := make([]publishResponse, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { results[i] = publishOne(ctx, b, share, uint64(i), uint64(n)) })
	}
	wg.Wait()
	var out publishResponse
	for _, r := range results {
		out.Published += r.Published
		out.Errors += r.Errors
	}
	out.ElapsedMs = float64(time.Since(start).Microseconds()) / 1000
	return out
}

// publishOne runs one publisher, bounded by count and deadline, with the
// peers' loops: paced publishers wake every 1 ms and send what they owe;
// rate 0 publishes batch events, then yields the processor, repeatedly. Its
// k-th event has Probe.Seq first + k*step.
func publishOne(ctx context.Context, b broker.Broker, p publishRequest, first, step uint64) publishResponse {
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
			Seq:                first + uint64(seq)*step,
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
