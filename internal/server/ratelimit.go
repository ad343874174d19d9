package server

import (
	"context"
	"fmt"
	"sync"
	"time"

	"connectrpc.com/connect"

	"github.com/honeydo/realtime/internal/auth"
)

// RateLimit configures the per-principal token bucket on unary calls.
type RateLimit struct {
	// PerSecond is the sustained rate. Zero means 20; negative disables the
	// limit.
	PerSecond float64
	// Burst is how many calls may come at once. Zero means 40.
	Burst int
}

// rateLimiter keeps one token bucket per principal, keyed by
// [auth.Principal.Key]: services and users apart, even with equal ids. Buckets that have
// refilled completely carry no state worth keeping, so a sweep drops them
// and memory follows the active callers, not every caller ever seen.
type rateLimiter struct {
	rate  float64
	burst float64
	now   func() time.Time

	mu        sync.Mutex
	buckets   map[string]*bucket
	lastSweep time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newRateLimiter(cfg RateLimit, now func() time.Time) *rateLimiter {
	if cfg.PerSecond < 0 {
		return nil
	}
	if cfg.PerSecond == 0 {
		cfg.PerSecond = 20
	}
	if cfg.Burst <= 0 {
		cfg.Burst = 40
	}
	if now == nil {
		now = time.Now
	}
	return &rateLimiter{rate: cfg.PerSecond, burst: float64(cfg.Burst), now: now, buckets: make(map[string]*bucket)}
}

func (l *rateLimiter) allow(key string) bool {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) > time.Minute {
		l.sweep(now)
	}
	b := l.buckets[key]
	if b == nil {
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

func (l *rateLimiter) sweep(now time.Time) {
	l.lastSweep = now
	full := time.Duration(l.burst / l.rate * float64(time.Second))
	for k, b := range l.buckets {
		if now.Sub(b.last) >= full {
			delete(l.buckets, k)
		}
	}
}

// rateLimitInterceptor limits unary calls and stream opens per verified
// principal. It must
// run after the auth interceptor, which puts the principal in the context.
type rateLimitInterceptor struct {
	limiter *rateLimiter
}

func (i rateLimitInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if i.limiter != nil && !req.Spec().IsClient {
			if p, ok := auth.FromContext(ctx); ok && !i.limiter.allow(p.Key()) {
				return nil, connect.NewError(connect.CodeResourceExhausted, fmt.Errorf("rate limit: more than %g calls per second; slow down", i.limiter.rate))
			}
		}
		return next(ctx, req)
	}
}

func (rateLimitInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

// WrapStreamingHandler charges opening a stream to the same bucket as a
// unary call: an open verifies a token, joins rooms and may replay history
// (on JetStream, a consumer per resume), so a client must not open and
// close streams in a tight loop. A client that reconnects with backoff
// never notices.
func (i rateLimitInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		if i.limiter != nil {
			if p, ok := auth.FromContext(ctx); ok && !i.limiter.allow(p.Key()) {
				return connect.NewError(connect.CodeResourceExhausted, fmt.Errorf("rate limit: streams opened faster than %g per second; reconnect with backoff", i.limiter.rate))
			}
		}
		return next(ctx, conn)
	}
}
