package auth

import (
	"context"
	"time"
)

// Principal is a verified caller: a person holding a Clerk session token, or
// a backend service holding a service credential.
type Principal struct {
	// UserID is the Clerk user id (the token's sub), or the service's name
	// for a service principal.
	UserID string
	// SessionID is the Clerk session id (sid); empty for services.
	SessionID string
	// HouseholdID is the token's active organization, or the configured
	// default household when the token has none. Empty for services.
	HouseholdID string
	// Expiry is when the credential stops being valid; zero for credentials
	// that do not expire (static service keys).
	Expiry time.Time
	// Service is true for backend services. Only services may Publish.
	Service bool
	// Extra rooms the principal joins beyond its user, household and the
	// broadcast room (used by the benchmark API's dev tokens).
	ExtraRooms []string
}

type principalKey struct{}

// WithPrincipal returns a copy of ctx that carries p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal the auth interceptor stored in ctx.
func FromContext(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*Principal)
	return p, ok && p != nil
}
