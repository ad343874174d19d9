package auth

import (
	"log/slog"
	"net/http"
	"time"
)

// Defaults for the zero values of [Config].
const (
	// DefaultAPIURL is Clerk's Backend API; its /jwks endpoint serves the
	// instance's key set.
	DefaultAPIURL = "https://api.clerk.com/v1"
	// DefaultJWKSRefetchInterval bounds how often an unknown kid may trigger
	// a JWKS request.
	DefaultJWKSRefetchInterval = 5 * time.Second
	// DefaultLeeway absorbs small clock skew between Clerk and this server.
	DefaultLeeway = 5 * time.Second
)

// Config configures a [Verifier]. At least one of SecretKey, JWTKeyPEM and
// Dev must be set; every other field has a usable zero value.
type Config struct {
	// SecretKey is the Clerk secret key (CLERK_SECRET_KEY, "sk_…"). The
	// verifier uses it to fetch the instance's JWKS. Ignored for
	// verification when JWTKeyPEM is set.
	SecretKey string
	// JWTKeyPEM is the instance's PEM public key (CLERK_JWT_KEY) for
	// networkless verification. Literal "\n" sequences (as the key often
	// arrives through a one-line environment variable) are accepted.
	JWTKeyPEM string
	// APIURL is the base URL of Clerk's Backend API, including the version
	// path. Default [DefaultAPIURL]; tests point it at a local stand-in.
	APIURL string
	// HTTPClient makes the JWKS requests. Default: the SDK's client (5 s
	// timeout).
	HTTPClient *http.Client
	// JWKSRefetchInterval is the least time between two JWKS requests: a
	// token with an unknown kid triggers a refetch only if the last one is
	// at least this old. Default [DefaultJWKSRefetchInterval].
	JWKSRefetchInterval time.Duration
	// Issuer, when set, is the only accepted iss of Clerk-signed tokens
	// (e.g. your Frontend API or proxy URL). Default: the SDK's rule, an
	// issuer starting with "https://clerk." or containing ".clerk.accounts".
	Issuer string
	// AuthorizedParties lists the accepted azp values (the origins of your
	// frontends, e.g. "https://app.example.com"). When non-empty, a token
	// whose azp is missing or not listed is rejected. Default: any azp.
	AuthorizedParties []string
	// Leeway is the clock skew tolerated on exp, nbf and iat. Zero means
	// [DefaultLeeway]; a negative value means none.
	Leeway time.Duration
	// DefaultHousehold is the household of tokens without an active
	// organization. Default: none, and such tokens are denied.
	DefaultHousehold string
	// ServiceKeys maps service names to their static keys, each
	// [ServiceKeyPrefix] followed by at least 32 URL-safe base64 characters
	// (see [NewServiceKey]). Default: no services.
	ServiceKeys map[string]string
	// Dev, when set, makes the verifier accept tokens minted by this dev
	// key and its [DevKey.ServiceKey] as service "dev". Never set it in
	// production.
	Dev *DevKey
	// OnFailure, when set, is called with [Reason] of every failed
	// verification (and of a missing header, by the interceptor), so the
	// server can count failures by reason. It must be cheap and safe for
	// concurrent use.
	OnFailure func(reason string)
	// Logger receives JWKS fetch failures (which callers only see as
	// Unavailable). Default: [slog.Default].
	Logger *slog.Logger
	// Now is the verifier's clock. Default: [time.Now]. For tests.
	Now func() time.Time
}
