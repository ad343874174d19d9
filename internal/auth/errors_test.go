package auth

import (
	"errors"
	"fmt"
	"testing"

	"connectrpc.com/connect"
)

func TestCodeAndReason(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err    error
		code   connect.Code
		reason string
	}{
		{ErrMissingToken, connect.CodeUnauthenticated, "missing"},
		{ErrMalformedToken, connect.CodeUnauthenticated, "malformed"},
		{ErrExpired, connect.CodeUnauthenticated, "expired"},
		{ErrNotYetValid, connect.CodeUnauthenticated, "not_yet_valid"},
		{ErrNoExpiry, connect.CodeUnauthenticated, "no_exp"},
		{ErrNoSession, connect.CodeUnauthenticated, "no_sid"},
		{ErrNotUser, connect.CodeUnauthenticated, "not_user"},
		{ErrBadSignature, connect.CodeUnauthenticated, "bad_signature"},
		{ErrUnknownKey, connect.CodeUnauthenticated, "unknown_key"},
		{ErrWrongIssuer, connect.CodeUnauthenticated, "wrong_issuer"},
		{ErrWrongAuthorizedParty, connect.CodeUnauthenticated, "wrong_azp"},
		{ErrSessionPending, connect.CodeUnauthenticated, "pending"},
		{ErrUnknownServiceKey, connect.CodeUnauthenticated, "unknown_service_key"},
		{ErrKeysUnavailable, connect.CodeUnavailable, "keys_unavailable"},
		{ErrNoHousehold, connect.CodePermissionDenied, "no_household"},
		{ErrNotService, connect.CodePermissionDenied, "not_service"},
		{ErrServiceNotAllowed, connect.CodePermissionDenied, "service_not_allowed"},
		// Wrapped, in every way callers wrap.
		{newError(ErrExpired, "detail", errors.New("cause")), connect.CodeUnauthenticated, "expired"},
		{fmt.Errorf("subscribe: %w", newError(ErrKeysUnavailable, "", nil)), connect.CodeUnavailable, "keys_unavailable"},
		{ConnectError(newError(ErrNotService, "", nil)), connect.CodePermissionDenied, "not_service"},
		// Not ours.
		{connect.NewError(connect.CodeResourceExhausted, errors.New("slow")), connect.CodeResourceExhausted, "other"},
		{errors.New("boom"), connect.CodeUnknown, "other"},
		{nil, connect.CodeUnknown, ""},
	}
	if len(errorKinds) != 17 {
		t.Fatalf("errorKinds has %d entries; add the new sentinel to this table", len(errorKinds))
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.err), func(t *testing.T) {
			t.Parallel()
			if got := Code(tt.err); got != tt.code {
				t.Errorf("Code = %v, want %v", got, tt.code)
			}
			if got := Reason(tt.err); got != tt.reason {
				t.Errorf("Reason = %q, want %q", got, tt.reason)
			}
		})
	}
}

func TestErrorMessageAndUnwrap(t *testing.T) {
	t.Parallel()
	cause := errors.New("dial tcp 10.0.0.1:443: connection refused")
	err := newError(ErrKeysUnavailable, "cannot fetch Clerk's key set", cause)
	if got, want := err.Error(), "token signing keys unavailable: cannot fetch Clerk's key set"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(err, ErrKeysUnavailable) || !errors.Is(err, cause) {
		t.Error("sentinel or cause not reachable")
	}
	if got := newError(ErrExpired, "", nil).Error(); got != "token expired" {
		t.Errorf("Error() = %q", got)
	}

	ce := ConnectError(err)
	if ce.Code() != connect.CodeUnavailable || ce.Message() != err.Error() {
		t.Errorf("ConnectError = %v", ce)
	}
	if ConnectError(ce) != ce {
		t.Error("ConnectError wrapped a *connect.Error again")
	}
	if ConnectError(nil) != nil {
		t.Error("ConnectError(nil) != nil")
	}
}
