package reconnect

import (
	"testing"
	"time"

	"github.com/honeydo/realtime/internal/auth"
	"github.com/honeydo/realtime/internal/broker"
	"github.com/honeydo/realtime/internal/rpcerr"
)

// TestServerEndings: the codes the server ends (or refuses) a Subscribe
// stream with, as internal/rpcerr maps them, get the decision
// docs/RECONNECT.md promises for that situation. A change to the server's
// mapping that would turn a resumable ending into a stop (or a refusal
// into a retry loop) fails here.
func TestServerEndings(t *testing.T) {
	healthy := Ending{Kind: EndError, Welcomed: true, Lived: time.Minute, SentCursor: true}
	atOpen := Ending{Kind: EndError, SentCursor: true}
	for _, c := range []struct {
		name   string
		err    error
		ending Ending
		action Action
		reason Reason
		now    bool
	}{
		{"slow consumer: resume with backoff", broker.ErrSlowConsumer, healthy, Retry, ReasonUnavailable, false},
		{"broker closed (shutdown): resume with backoff", broker.ErrClosed, healthy, Retry, ReasonUnavailable, false},
		{"backend unavailable: resume with backoff", broker.ErrUnavailable, atOpen, Retry, ReasonUnavailable, false},
		{"invalid cursor: drop it, at once", broker.ErrInvalidCursor, atOpen, Retry, ReasonInvalidCursor, true},
		{"token expired on a healthy stream: at once", auth.ErrExpired, healthy, Retry, ReasonUnauthenticated, true},
		{"token signing keys unavailable: retry", auth.ErrKeysUnavailable, atOpen, Retry, ReasonUnavailable, false},
		{"service credential subscribing: stop", auth.ErrServiceNotAllowed, atOpen, Stop, ReasonForbidden, false},
	} {
		e := c.ending
		e.Code = rpcerr.Error(c.err).Code()
		d := Policy{}.AfterEnd(e)
		if d.Action != c.action || d.Reason != c.reason || (d.Action == Retry && (d.Ceiling == 0) != c.now) {
			t.Errorf("%s: the server says %v; decision %+v", c.name, e.Code, d)
		}
	}
}
