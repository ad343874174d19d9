package reconnect

import (
	"time"

	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
)

// Resync is why the application must refetch its state; the names are the
// browser's ResyncReason values. Empty means nothing was missed.
type Resync string

// The resync reasons.
const (
	// ResyncNone: the stream goes on from the cursor, nothing missed.
	ResyncNone Resync = ""
	// ResyncInitial: the first stream of a subscriber started without a
	// cursor. The browser asks the app to load its state; a Go caller
	// loads its state before calling Subscribe, so the Go client reports
	// nothing.
	ResyncInitial Resync = "initial"
	// ResyncExpired: the cursor left the server's history window.
	ResyncExpired Resync = "expired"
	// ResyncEpochChanged: the server lost its history since the cursor.
	ResyncEpochChanged Resync = "epoch-changed"
	// ResyncInvalidCursor: the server rejected the cursor, which was
	// dropped (see [Decision.DropCursor]).
	ResyncInvalidCursor Resync = "invalid-cursor"
	// ResyncIdentityChanged: the stream serves another user, household or
	// set of rooms than the previous one.
	ResyncIdentityChanged Resync = "identity-changed"
)

// Welcome is what the stream loop knows at a welcome frame.
type Welcome struct {
	// Resume is the welcome's resume status.
	Resume realtimev1.ResumeStatus
	// IdentityChanged: an earlier stream of this subscriber was welcomed
	// with another user, household or set of rooms.
	IdentityChanged bool
	// Pending is a resync owed from before the stream opened (the cursor
	// was dropped), or ResyncNone.
	Pending Resync
	// First: no stream of this subscriber was welcomed before.
	First bool
}

// AfterWelcome returns the resync a welcome calls for. The server resumes
// a cursor on whatever rooms the token grants, so a stream of another
// household can say RESUMED: a changed identity wins over everything.
func AfterWelcome(w Welcome) Resync {
	switch {
	case w.IdentityChanged:
		return ResyncIdentityChanged
	case w.Resume == realtimev1.ResumeStatus_RESUME_STATUS_EXPIRED:
		return ResyncExpired
	case w.Resume == realtimev1.ResumeStatus_RESUME_STATUS_EPOCH_CHANGED:
		return ResyncEpochChanged
	case w.Resume == realtimev1.ResumeStatus_RESUME_STATUS_RESUMED:
		return ResyncNone
	case w.Pending != ResyncNone:
		return w.Pending
	case w.First:
		return ResyncInitial
	}
	return ResyncNone
}

// Watchdog returns how long a welcomed stream may stay silent: two of the
// heartbeat intervals its welcome announced, or of [DefaultHeartbeat] if
// it announced none.
func Watchdog(heartbeat time.Duration) time.Duration {
	if heartbeat <= 0 {
		heartbeat = DefaultHeartbeat
	}
	return WatchdogFactor * heartbeat
}

// RenewIn returns when to open the next stream of one that the server
// ends in left: lead before its end, but no earlier than half way
// through; false when left is not positive (nothing to renew).
func RenewIn(left, lead time.Duration) (time.Duration, bool) {
	if left <= 0 {
		return 0, false
	}
	return max(left/2, left-lead), true
}

// RenewRetryIn returns when to try renewal retry number try (from 1) of a
// stream that the server ends in left: try steps of [RenewRetryStep], at
// most a quarter of the time left; false once no more than [RenewMinLeft]
// is left, when the stream is left to end and the subscriber reconnects.
func RenewRetryIn(left time.Duration, try int) (time.Duration, bool) {
	if left <= RenewMinLeft {
		return 0, false
	}
	return min(time.Duration(try)*RenewRetryStep, left/4), true
}

// RenewalTaken reports whether the next stream, welcomed while the current
// one (ending at current) still runs, replaces it. A welcome that ends no
// later than the current stream carries a token that was not renewed yet:
// the renewal is dropped and tried again with a fresh token. next is nil
// for a stream without an end.
func RenewalTaken(current time.Time, next *time.Time) bool {
	return next == nil || next.After(current)
}

// Seamless reports whether switching to a renewed stream is invisible: it
// resumed from the cursor and serves the same user, household and rooms.
// Otherwise the switch is a fresh stream: its welcome is handled as any
// other (status, resync).
func Seamless(resume realtimev1.ResumeStatus, sameIdentity bool) bool {
	return sameIdentity && resume == realtimev1.ResumeStatus_RESUME_STATUS_RESUMED
}
