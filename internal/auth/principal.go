package auth

import (
	"context"
	"log/slog"
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

// Key names p for per-caller state such as rate-limit buckets:
// "service:<name>" or "user:<id>". Services and users have separate
// namespaces, so a service named like a user never shares that user's state.
func (p *Principal) Key() string {
	if p.Service {
		return "service:" + p.UserID
	}
	return "user:" + p.UserID
}

// LogAttrs are the attributes that name p in a log line: service=<name> for
// a service; user, household and session for a person. A service is never
// logged as user=, so the two read apart even when their ids are equal.
func (p *Principal) LogAttrs() []slog.Attr {
	if p.Service {
		return []slog.Attr{slog.String("service", p.UserID)}
	}
	return []slog.Attr{slog.String("user", p.UserID), slog.String("household", p.HouseholdID), slog.String("session", p.SessionID)}
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
