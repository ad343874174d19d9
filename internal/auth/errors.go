package auth

import (
	"errors"

	"connectrpc.com/connect"
)

// The sentinel errors of this package. Every error [Verifier.Verify] returns
// is an [*Error] that wraps exactly one of them; test with [errors.Is] and
// map with [Code] and [Reason].
var (
	// ErrMissingToken means there is no Authorization header, or not a
	// Bearer one, or no credential after the scheme.
	ErrMissingToken = errors.New("missing bearer token")
	// ErrMalformedToken means the credential is neither a service key nor a
	// well-formed compact JWT, or its claims do not decode.
	ErrMalformedToken = errors.New("malformed token")
	// ErrExpired means the token's exp is in the past (beyond the leeway).
	ErrExpired = errors.New("token expired")
	// ErrNotYetValid means the token's nbf or iat is in the future (beyond
	// the leeway).
	ErrNotYetValid = errors.New("token not valid yet")
	// ErrNoExpiry means the token has no exp claim. The SDK would accept it;
	// we don't, because streams must end when their token expires.
	ErrNoExpiry = errors.New("token has no expiry (exp)")
	// ErrNoSession means the token has no sid claim, so it is not a session
	// token.
	ErrNoSession = errors.New("token has no session id (sid)")
	// ErrNotUser means the token's sub is missing or not a user id.
	ErrNotUser = errors.New("token subject is not a user")
	// ErrBadSignature means the signature does not verify with the key, or
	// the token's algorithm is not the key's.
	ErrBadSignature = errors.New("bad token signature")
	// ErrUnknownKey means the token's kid is not in Clerk's key set (even
	// after a refetch), or no key for it is configured.
	ErrUnknownKey = errors.New("token signed by an unknown key")
	// ErrWrongIssuer means the token's iss is not the expected issuer; this
	// includes dev-issued tokens presented to a production verifier.
	ErrWrongIssuer = errors.New("token issuer not accepted")
	// ErrWrongAuthorizedParty means the token's azp is missing or not in
	// [Config.AuthorizedParties].
	ErrWrongAuthorizedParty = errors.New("token authorized party (azp) not allowed")
	// ErrSessionPending means the session's status (v2 sts claim) is
	// pending or otherwise not active.
	ErrSessionPending = errors.New("session is not active")
	// ErrUnknownServiceKey means a well-formed service key matches none of
	// the configured ones.
	ErrUnknownServiceKey = errors.New("unknown service key")
	// ErrKeysUnavailable means Clerk's key set could not be fetched.
	// Retrying later may help, hence Unavailable rather than
	// Unauthenticated.
	ErrKeysUnavailable = errors.New("token signing keys unavailable")
	// ErrNoHousehold means a valid session has no active organization and
	// no default household is configured.
	ErrNoHousehold = errors.New("token has no active organization and no default household is configured")
	// ErrNotService means a user session tried something only services may
	// do (Publish).
	ErrNotService = errors.New("publishing needs a service credential; user session tokens may not publish")
	// ErrServiceNotAllowed means a service credential tried something that
	// acts for a person (Subscribe): a service has no rooms of its own.
	ErrServiceNotAllowed = errors.New("service credentials may not make this call: it needs a user's session token")
)

// errorKinds maps each sentinel to its Connect code and its metrics label.
// One table, so that [Code], [Reason] and their tests cannot drift apart.
var errorKinds = []struct {
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
}

// Error is the error type of this package. Its message is the sentinel's,
// followed by a detail that is safe to show to the caller (it never contains
// the credential). Cause, when set, is the underlying error (an SDK or
// network error) for server logs; it is reachable through [errors.Is] and
// [errors.As] but deliberately left out of the message, because it may name
// internal hosts.
type Error struct {
	// Kind is one of the Err… sentinels.
	Kind error
	// Detail says more about this failure, e.g. which azp was refused.
	Detail string
	// Cause is the underlying error, if any.
	Cause error
}

// Error returns the sentinel's message and the detail.
func (e *Error) Error() string {
	if e.Kind == nil {
		return "auth: " + e.Detail
	}
	if e.Detail == "" {
		return e.Kind.Error()
	}
	return e.Kind.Error() + ": " + e.Detail
}

// Unwrap returns the sentinel and the cause, so [errors.Is] finds either.
func (e *Error) Unwrap() []error {
	var errs []error
	for _, err := range []error{e.Kind, e.Cause} {
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

func newError(kind error, detail string, cause error) *Error {
	return &Error{Kind: kind, Detail: detail, Cause: cause}
}

// Code maps an error to the Connect code a handler should return: the code
// of a [*connect.Error], or the code of this package's sentinel the error
// wraps. Anything else (including nil) is [connect.CodeUnknown], as with
// [connect.CodeOf].
func Code(err error) connect.Code {
	if err == nil {
		return connect.CodeUnknown
	}
	// Our sentinels first: a *connect.Error built by [ConnectError] wraps
	// one and has the same code anyway.
	for _, k := range errorKinds {
		if errors.Is(err, k.err) {
			return k.code
		}
	}
	return connect.CodeOf(err)
}

// IsAuthError reports whether err is one of this package's errors, the
// ones [Code] and [Reason] know.
func IsAuthError(err error) bool {
	return err != nil && Reason(err) != reasonOther
}

// reasonOther is the [Reason] of an error this package does not know.
const reasonOther = "other"

// Reason returns a short, stable label for an authentication failure
// ("expired", "bad_signature", "unknown_key", "wrong_azp", "pending",
// "missing", "malformed", "no_exp", "no_sid", "keys_unavailable", …),
// meant for metrics. It returns "" for nil and "other" for errors that are
// not this package's.
func Reason(err error) string {
	if err == nil {
		return ""
	}
	for _, k := range errorKinds {
		if errors.Is(err, k.err) {
			return k.reason
		}
	}
	return reasonOther
}

// ConnectError turns err into a [*connect.Error] with the code [Code]
// gives. A *connect.Error is returned as it is; nil stays nil.
func ConnectError(err error) *connect.Error {
	if err == nil {
		return nil
	}
	if ce, ok := errors.AsType[*connect.Error](err); ok {
		return ce
	}
	return connect.NewError(Code(err), err)
}
