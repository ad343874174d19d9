package realtime

import (
	"context"
	"time"

	"connectrpc.com/connect"

	"github.com/honeydo/realtime/internal/auth"
	"github.com/honeydo/realtime/internal/rpcerr"
)

// Principal is a verified caller: a person with a Clerk session, or a
// backend service with a service key.
type Principal struct {
	// UserID is the Clerk user id, or the service's name.
	UserID string
	// SessionID is the Clerk session id; empty for services.
	SessionID string
	// HouseholdID is the token's active organization, or
	// [Options.DefaultHousehold]; empty for services.
	HouseholdID string
	// Service is true for a backend service.
	Service bool
	// Expiry is when the credential expires; zero for service keys.
	Expiry time.Time
}

// Caller returns the verified caller of the RPC whose context ctx is: in
// the handlers of RealtimeService, of the modules and of every service
// built with [Realtime.Interceptor]. ok is false elsewhere.
func Caller(ctx context.Context) (p Principal, ok bool) {
	ap, ok := auth.FromContext(ctx)
	if !ok {
		return Principal{}, false
	}
	return Principal{
		UserID:      ap.UserID,
		SessionID:   ap.SessionID,
		HouseholdID: ap.HouseholdID,
		Service:     ap.Service,
		Expiry:      ap.Expiry,
	}, true
}

// RequireUser returns the caller if it is a person, for handlers that act
// for one: Unauthenticated without a verified caller, PermissionDenied for
// a service credential. The errors are those RealtimeService returns.
func RequireUser(ctx context.Context) (Principal, error) {
	if _, err := auth.RequireUser(ctx); err != nil {
		return Principal{}, err
	}
	p, _ := Caller(ctx)
	return p, nil
}

// ErrorRule maps a sentinel error of the application (tested with
// errors.Is) to a Connect code for [ConnectError]: Err and Code.
type ErrorRule = rpcerr.Rule

// ConnectError turns err into the Connect error a client should see, as
// the service itself does: a *connect.Error as it is; then rules; then
// credential failures, emit failures (Unavailable when a retry can help),
// broker and context errors with their codes; anything else Internal with
// a generic message (log the original). nil stays nil.
func ConnectError(err error, rules ...ErrorRule) *connect.Error {
	return rpcerr.Error(err, rules...)
}
