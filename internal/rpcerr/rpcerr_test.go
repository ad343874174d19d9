package rpcerr_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"connectrpc.com/connect"

	"github.com/honeydo/realtime/internal/auth"
	"github.com/honeydo/realtime/internal/broker"
	"github.com/honeydo/realtime/internal/rpcerr"
)

var errGone = errors.New("chores: gone")

// TestError is the whole mapping, one row per case of the package doc.
func TestError(t *testing.T) {
	t.Parallel()
	decided := connect.NewError(connect.CodeAborted, errors.New("decided"))
	authErr := &auth.Error{Kind: auth.ErrExpired, Detail: "an hour ago"}
	rules := []rpcerr.Rule{{Err: errGone, Code: connect.CodeNotFound}}
	for _, tc := range []struct {
		name    string
		err     error
		want    connect.Code
		wantMsg string // substring of the message
		hidden  string // must not be in the message
		is      error  // must still be found with errors.Is, when set
	}{
		{"connect error kept", decided, connect.CodeAborted, "decided", "", nil},
		{"module rule", fmt.Errorf("%w: chore 7", errGone), connect.CodeNotFound, "chore 7", "", errGone},
		{"auth table", fmt.Errorf("verify: %w", authErr), connect.CodeUnauthenticated, "token expired", "", auth.ErrExpired},
		{"auth no household", &auth.Error{Kind: auth.ErrNoHousehold}, connect.CodePermissionDenied, "no active organization", "", nil},
		{"publish, backend down", &rpcerr.PublishError{Err: fmt.Errorf("%w: nats: timeout", broker.ErrUnavailable)}, connect.CodeUnavailable, "could not be published", "", broker.ErrUnavailable},
		{"publish, broker closed", fmt.Errorf("chores: %w", &rpcerr.PublishError{Err: broker.ErrClosed}), connect.CodeUnavailable, "chores: the event could not be published", "", broker.ErrClosed},
		{"publish, no ack in time", &rpcerr.PublishError{Err: context.DeadlineExceeded}, connect.CodeUnavailable, "deadline", "", nil},
		{"publish, caller gone", &rpcerr.PublishError{Err: context.Canceled}, connect.CodeCanceled, "canceled", "", nil},
		{"publish, refused event", &rpcerr.PublishError{Err: fmt.Errorf("%w: no payload at nats://10.0.0.7", broker.ErrInvalidEvent)}, connect.CodeInternal, "internal error", "10.0.0.7", nil},
		{"invalid cursor", fmt.Errorf("resume: %w", broker.ErrInvalidCursor), connect.CodeInvalidArgument, "invalid cursor", "", nil},
		{"slow consumer", broker.ErrSlowConsumer, connect.CodeResourceExhausted, "reconnect with your cursor", "", nil},
		{"broker closed", broker.ErrClosed, connect.CodeUnavailable, "shutting down", "", nil},
		{"backend unavailable", broker.ErrUnavailable, connect.CodeUnavailable, "unavailable", "", nil},
		{"canceled", fmt.Errorf("list: %w", context.Canceled), connect.CodeCanceled, "canceled", "", nil},
		{"deadline", context.DeadlineExceeded, connect.CodeDeadlineExceeded, "deadline", "", nil},
		{"anything else", errors.New("disk I/O error at /var/lib/x.db"), connect.CodeInternal, "internal error", "/var/lib", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := rpcerr.Error(tc.err, rules...)
			if got.Code() != tc.want {
				t.Errorf("code = %v, want %v", got.Code(), tc.want)
			}
			if !strings.Contains(got.Message(), tc.wantMsg) {
				t.Errorf("message %q does not contain %q", got.Message(), tc.wantMsg)
			}
			if tc.hidden != "" && strings.Contains(got.Message(), tc.hidden) {
				t.Errorf("message %q leaks %q", got.Message(), tc.hidden)
			}
			if tc.is != nil && !errors.Is(got, tc.is) {
				t.Errorf("errors.Is(%v, %v) = false", got, tc.is)
			}
		})
	}
	if rpcerr.Error(nil) != nil {
		t.Error("Error(nil) is not nil")
	}
}
