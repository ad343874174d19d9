// Package reconnect is the reconnect contract of docs/RECONNECT.md as pure
// functions: what a subscriber does when a stream ends, what a welcome
// frame asks of the application, and when the watchdog and the token
// renewal fire. The Go client's stream loop calls it; the browser client
// has the same functions in web's reconnect-policy.ts, and both test
// suites run every case of testdata/reconnect/cases.json against their
// own copy.
//
// Nothing here keeps state, reads a clock or draws a random number: the
// callers pass in what happened and carry the counters from one decision
// to the next. Every function is safe for concurrent use.
package reconnect

import (
	"time"

	"connectrpc.com/connect"
)

// The numbers of the contract; docs/RECONNECT.md lists them and
// testdata/reconnect/cases.json repeats them for both clients' tests.
const (
	// BackoffInitial is the default ceiling of the first retry's delay, and
	// how long a stream must have lived from its welcome to count as
	// healthy (the backoff starts over after a healthy stream).
	BackoffInitial = time.Second
	// BackoffMax is the default largest ceiling of a retry's delay.
	BackoffMax = 5 * time.Second
	// ConnectTimeout bounds the wait from opening a stream (token fetch
	// included) to its welcome frame.
	ConnectTimeout = 10 * time.Second
	// DefaultHeartbeat is the heartbeat interval assumed when a welcome
	// announces none; the server's default (internal/server) is the same.
	DefaultHeartbeat = 4 * time.Second
	// WatchdogFactor is how many heartbeat intervals of silence declare a
	// welcomed stream dead: two tolerate one late heartbeat.
	WatchdogFactor = 2
	// RenewLead is how long before the server ends a stream (its token's
	// expiry plus grace) the next one is opened, at most half the stream's
	// life.
	RenewLead = 10 * time.Second
	// RenewRetryStep spaces the renewal's retries: retry k waits k steps,
	// at most a quarter of the time left.
	RenewRetryStep = time.Second
	// RenewMinLeft is the time left below which a failed renewal is not
	// tried again: the stream ends with its token and the subscriber
	// reconnects at once.
	RenewMinLeft = time.Second
	// CallTimeout bounds a unary call that has no deadline of its own.
	CallTimeout = 10 * time.Second
	// MaxUnauthenticated is how many Unauthenticated endings in a row,
	// with no welcome between them, stop the subscriber: the first is
	// retried at once with a fresh token, the second means the credential
	// itself is refused.
	MaxUnauthenticated = 2
)

// Policy holds the settings a caller may change; zero fields mean the
// contract's defaults.
type Policy struct {
	// BackoffInitial; zero means [BackoffInitial].
	BackoffInitial time.Duration
	// BackoffMax; zero means [BackoffMax]. Never below BackoffInitial.
	BackoffMax time.Duration
	// MaxUnauthenticated; zero means [MaxUnauthenticated].
	MaxUnauthenticated int
}

// WithDefaults returns p with its zero fields set to the defaults.
func (p Policy) WithDefaults() Policy {
	if p.BackoffInitial <= 0 {
		p.BackoffInitial = BackoffInitial
	}
	if p.BackoffMax <= 0 {
		p.BackoffMax = BackoffMax
	}
	if p.BackoffMax < p.BackoffInitial {
		p.BackoffMax = p.BackoffInitial
	}
	if p.MaxUnauthenticated <= 0 {
		p.MaxUnauthenticated = MaxUnauthenticated
	}
	return p
}

// BackoffCeiling returns the ceiling of the delay before retry n (from 1):
// BackoffInitial·2ⁿ⁻¹, at most BackoffMax; zero for n < 1. The delay
// itself is drawn uniformly from [0, ceiling] (full jitter), so that
// clients cut off together do not come back together.
func (p Policy) BackoffCeiling(n int) time.Duration {
	p = p.WithDefaults()
	if n < 1 {
		return 0
	}
	c := p.BackoffInitial
	for i := 1; i < n && c < p.BackoffMax; i++ {
		c *= 2
	}
	return min(c, p.BackoffMax)
}

// EndKind is how a stream, or an attempt to open one, ended.
type EndKind int

const (
	// EndError: the stream failed with an error; [Ending.Code] is its code.
	EndError EndKind = iota + 1
	// EndClean: the server ended the stream without an error.
	EndClean
	// EndStalled: the watchdog gave up on a silent stream (no welcome
	// within [ConnectTimeout], or no frame within the watchdog limit).
	EndStalled
	// EndNoToken: the token source had no token to give (the browser's
	// provider returned none: nobody is signed in; Go's Token failed).
	EndNoToken
)

// Ending is what the stream loop knows when a stream ends.
type Ending struct {
	Kind EndKind
	// Code is the error's code for [EndError].
	Code connect.Code
	// Welcomed: the stream got its welcome frame.
	Welcomed bool
	// Lived is the time from the welcome to the end.
	Lived time.Duration
	// SentCursor: the stream was opened with a resume cursor.
	SentCursor bool
	// Attempt counts the retries since the last healthy stream, before
	// this ending (0 after a healthy one).
	Attempt int
	// UnauthStreak counts the Unauthenticated endings since the last
	// welcome, before this ending.
	UnauthStreak int
}

// Action is what the stream loop does next.
type Action int

const (
	// Retry opens the next stream, at once or after a backoff delay.
	Retry Action = iota + 1
	// Stop gives up: a retry would fail the same way. The Go client
	// returns the error; the browser shows an error status and waits for
	// the app (connect, "Retry now").
	Stop
)

// Reason is why a stream is reconnecting or stopped, as the browser's
// status reports it (its ErrorReason).
type Reason string

// The reasons.
const (
	ReasonUnavailable     Reason = "unavailable"
	ReasonUnauthenticated Reason = "unauthenticated"
	ReasonForbidden       Reason = "forbidden"
	ReasonIncompatible    Reason = "incompatible"
	ReasonInvalidCursor   Reason = "invalid-cursor"
)

// Decision is what to do after an [Ending].
type Decision struct {
	Action Action
	Reason Reason
	// Attempt is the retry's number (from 1), carried into the next
	// Ending; 0 when stopping.
	Attempt int
	// Ceiling bounds the retry's random delay; zero means retry at once.
	Ceiling time.Duration
	// RefreshToken: ask the token source for a fresh token, not a cached
	// one (the browser's forceRefresh).
	RefreshToken bool
	// DropCursor: forget the resume cursor, open the next stream without
	// one and resync (invalid-cursor) at its welcome.
	DropCursor bool
	// UnauthStreak is the Unauthenticated streak after this ending,
	// carried into the next Ending.
	UnauthStreak int
}

// AfterEnd decides what follows an ending.
func (p Policy) AfterEnd(e Ending) Decision {
	p = p.WithDefaults()
	attempt, streak := e.Attempt, e.UnauthStreak
	if e.Welcomed {
		streak = 0
		// A stream that stayed up a while was healthy: the backoff starts
		// over. One that died at once was not, or a server that welcomes
		// and drops would be hammered.
		if e.Lived >= p.BackoffInitial {
			attempt = 0
		}
	}
	stop := func(r Reason) Decision { return Decision{Action: Stop, Reason: r, UnauthStreak: streak} }
	retry := func(r Reason, immediate bool) Decision {
		d := Decision{Action: Retry, Reason: r, Attempt: attempt + 1, UnauthStreak: streak}
		if !immediate {
			d.Ceiling = p.BackoffCeiling(d.Attempt)
		}
		return d
	}
	switch e.Kind {
	case EndNoToken:
		return stop(ReasonUnauthenticated)
	case EndClean, EndStalled:
		return retry(ReasonUnavailable, false)
	}
	switch e.Code {
	case connect.CodeUnauthenticated:
		streak++
		if streak >= p.MaxUnauthenticated {
			return stop(ReasonUnauthenticated)
		}
		// A healthy stream reached its token's expiry (renewal failed), or
		// the token was stale when the stream opened: come back at once
		// with a fresh token. A stream cut soon after its welcome backs
		// off: the streak restarts at every welcome, so only the backoff
		// keeps that from looping.
		d := retry(ReasonUnauthenticated, !e.Welcomed || attempt == 0)
		d.RefreshToken = true
		return d
	case connect.CodeInvalidArgument:
		if e.SentCursor && !e.Welcomed {
			// Not a cursor this server issued (corrupt storage, another
			// deployment): start afresh now and resync at the welcome.
			d := retry(ReasonInvalidCursor, true)
			d.DropCursor = true
			return d
		}
		return stop(ReasonIncompatible)
	case connect.CodePermissionDenied:
		return stop(ReasonForbidden)
	case connect.CodeUnimplemented, connect.CodeFailedPrecondition, connect.CodeNotFound:
		// The request itself is wrong (a wrong URL, a client too old or
		// too new): the same request would fail the same way.
		return stop(ReasonIncompatible)
	}
	// Unavailable (shutdown, a broken connection), ResourceExhausted (the
	// stream fell behind, the per-user stream limit, the rate limit),
	// Internal, Unknown, DeadlineExceeded, …: the server or the path may
	// recover, and the cursor makes the retry lossless.
	return retry(ReasonUnavailable, false)
}
