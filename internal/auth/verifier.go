package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/clerk/clerk-sdk-go/v2"
	"github.com/clerk/clerk-sdk-go/v2/jwks"
	"github.com/clerk/clerk-sdk-go/v2/jwt"
	jose "github.com/go-jose/go-jose/v3"
	josejwt "github.com/go-jose/go-jose/v3/jwt"
)

// maxTokenLen caps the credential size before any decoding. Clerk session
// tokens are a little over 1 KB (they must fit a cookie); 16 KiB leaves room
// for custom claims and keeps garbage cheap to reject.
const maxTokenLen = 16 << 10

// clerkUserPrefix starts every Clerk user id.
const clerkUserPrefix = "user_"

// Verifier verifies bearer credentials and turns them into principals. Build
// it with [NewVerifier]; it is safe for concurrent use.
type Verifier struct {
	prod              keySource         // Clerk's keys; nil in dev-only mode
	dev               *clerk.JSONWebKey // the dev key's public JWK; nil outside dev mode
	issuer            string
	authorizedParties map[string]bool
	leeway            time.Duration
	defaultHousehold  string
	services          []serviceKey
	onFailure         func(string)
	now               func() time.Time
}

// NewVerifier checks cfg and builds a verifier. It makes no network calls:
// the JWKS is fetched when the first token needs it.
func NewVerifier(cfg Config) (*Verifier, error) {
	v := &Verifier{
		leeway:           cfg.Leeway,
		defaultHousehold: cfg.DefaultHousehold,
		onFailure:        cfg.OnFailure,
		now:              cfg.Now,
	}
	switch {
	case v.leeway == 0:
		v.leeway = DefaultLeeway
	case v.leeway < 0:
		v.leeway = 0
	}
	if v.now == nil {
		v.now = time.Now
	}
	if iss := strings.TrimSpace(cfg.Issuer); iss != "" {
		// Clerk's iss is an https origin without a trailing slash; forgive
		// the slash, refuse what can never match.
		iss = strings.TrimRight(iss, "/")
		if u, err := url.Parse(iss); err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") {
			return nil, fmt.Errorf("auth: Issuer %q is not an https origin like https://clerk.example.com", cfg.Issuer)
		}
		v.issuer = iss
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}

	switch {
	case strings.TrimSpace(cfg.JWTKeyPEM) != "":
		jwk, err := parsePublicKeyPEM(cfg.JWTKeyPEM)
		if err != nil {
			return nil, fmt.Errorf("auth: JWTKeyPEM (CLERK_JWT_KEY): %w", err)
		}
		v.prod = staticKey{jwk}
	case cfg.SecretKey != "":
		if !strings.HasPrefix(cfg.SecretKey, "sk_") {
			// Catches the classic mix-up with the publishable key (pk_…)
			// at start-up rather than as a 401 from Clerk on first use.
			return nil, errors.New("auth: SecretKey (CLERK_SECRET_KEY) does not look like a Clerk secret key (sk_…)")
		}
		apiURL := cfg.APIURL
		if apiURL == "" {
			apiURL = DefaultAPIURL
		}
		if u, err := url.Parse(apiURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("auth: APIURL %q is not an http(s) URL", apiURL)
		}
		interval := cfg.JWKSRefetchInterval
		if interval <= 0 {
			interval = DefaultJWKSRefetchInterval
		}
		secret := cfg.SecretKey
		ccfg := &clerk.ClientConfig{}
		ccfg.Key = &secret
		ccfg.URL = &apiURL
		ccfg.HTTPClient = cfg.HTTPClient
		v.prod = newJWKSCache(jwks.NewClient(ccfg), interval, v.now, logger)
	}
	if cfg.Dev != nil {
		v.dev = cfg.Dev.jwk
	}
	if v.prod == nil && v.dev == nil {
		return nil, errors.New("auth: no session token key: set SecretKey (CLERK_SECRET_KEY), JWTKeyPEM (CLERK_JWT_KEY) or Dev")
	}

	for _, p := range cfg.AuthorizedParties {
		// Origins carry no trailing slash; tolerate one in configuration.
		p = strings.TrimRight(strings.TrimSpace(p), "/")
		if p == "" {
			continue
		}
		if v.authorizedParties == nil {
			v.authorizedParties = make(map[string]bool)
		}
		v.authorizedParties[p] = true
	}

	services, err := newServiceKeys(cfg.ServiceKeys, cfg.Dev)
	if err != nil {
		return nil, err
	}
	v.services = services
	return v, nil
}

// parsePublicKeyPEM reads CLERK_JWT_KEY with the SDK's own parser, after
// undoing the "\n" escaping a one-line environment variable often has.
func parsePublicKeyPEM(s string) (*clerk.JSONWebKey, error) {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "\n") {
		s = strings.ReplaceAll(s, `\n`, "\n")
	}
	return clerk.JSONWebKeyFromPEM(s)
}

// Verify checks a bearer credential (without the "Bearer " prefix) and
// returns who it belongs to. Errors are [*Error] values; see [Code]. ctx
// bounds only the wait for Clerk's key set, when a token needs a key that
// is not cached yet.
func (v *Verifier) Verify(ctx context.Context, token string) (*Principal, error) {
	p, err := v.verify(ctx, strings.TrimSpace(token))
	if err != nil {
		v.failed(err)
		return nil, err
	}
	return p, nil
}

// failed reports a failure to the OnFailure hook.
func (v *Verifier) failed(err error) {
	if v.onFailure != nil {
		v.onFailure(Reason(err))
	}
}

func (v *Verifier) verify(ctx context.Context, token string) (*Principal, error) {
	switch {
	case token == "":
		return nil, newError(ErrMissingToken, "", nil)
	case len(token) > maxTokenLen:
		return nil, newError(ErrMalformedToken, fmt.Sprintf("credential longer than %d bytes", maxTokenLen), nil)
	case strings.HasPrefix(token, ServiceKeyPrefix):
		return v.verifyServiceKey(token)
	default:
		return v.verifySession(ctx, token)
	}
}

// tokenHeader is the part of the JOSE header we look at before verifying.
type tokenHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
}

// parseHeader reads the header of a compact JWS. We read it ourselves, not
// through the SDK, because the key must be chosen (by kid) before calling
// jwt.Verify, and so that shape errors are reported as malformed.
func parseHeader(token string) (tokenHeader, error) {
	var h tokenHeader
	head, rest, ok := strings.Cut(token, ".")
	if !ok || strings.Count(rest, ".") != 1 {
		return h, newError(ErrMalformedToken, "not a JWT (want three dot-separated parts)", nil)
	}
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return h, newError(ErrMalformedToken, "JWT header is not base64url", nil)
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		return h, newError(ErrMalformedToken, "JWT header is not a JSON object", nil)
	}
	if h.Alg == "" {
		return h, newError(ErrMalformedToken, "JWT header has no alg", nil)
	}
	return h, nil
}

// sessionClaims are the claims the SDK's SessionClaims lacks.
type sessionClaims struct {
	// Status is the v2 session status: "active" or "pending" (a session
	// that still has tasks to complete, e.g. choosing an organization).
	Status string `json:"sts"`
	// ExtraRooms carries [MintOptions.ExtraRooms] in dev tokens.
	ExtraRooms []string `json:"rtd_rooms"`
}

// clock adapts a func to the SDK's Clock.
type clock func() time.Time

func (c clock) Now() time.Time { return c() }

func (v *Verifier) verifySession(ctx context.Context, token string) (*Principal, error) {
	hdr, err := parseHeader(token)
	if err != nil {
		return nil, err
	}
	jwk, dev, err := v.keyFor(ctx, hdr.Kid)
	if err != nil {
		return nil, err
	}
	if hdr.Alg != jwk.Algorithm {
		// The SDK refuses this too, but with an untyped error; checking
		// first gives the caller a precise reason.
		return nil, newError(ErrBadSignature,
			fmt.Sprintf("signing algorithm %q is not the key's %q", clip(hdr.Alg, 16), jwk.Algorithm), nil)
	}

	extra := &sessionClaims{}
	claims, err := jwt.Verify(ctx, &jwt.VerifyParams{
		Token:                   token,
		JWK:                     jwk, // always ours: the SDK never fetches on its own
		Clock:                   clock(v.now),
		CustomClaimsConstructor: func(context.Context) any { return extra },
		Leeway:                  v.leeway,
		// The SDK's issuer rule is redone in checkIssuer below, where it
		// also covers dev tokens and Config.Issuer and fails with
		// ErrWrongIssuer instead of an untyped error. IsSatellite only
		// turns that one SDK check off.
		IsSatellite: true,
	})
	if err != nil {
		return nil, classifySDKError(err)
	}

	if err := v.checkIssuer(claims.Issuer, dev); err != nil {
		return nil, err
	}
	if claims.Expiry == nil {
		return nil, newError(ErrNoExpiry, "", nil)
	}
	if claims.SessionID == "" {
		return nil, newError(ErrNoSession, "", nil)
	}
	switch {
	case claims.Subject == "":
		return nil, newError(ErrNotUser, "token has no subject (sub)", nil)
	case !dev && !strings.HasPrefix(claims.Subject, clerkUserPrefix):
		// Dev tokens may use readable ids like "alice"; Clerk's never do.
		return nil, newError(ErrNotUser, "sub is not a Clerk user id (user_…)", nil)
	}
	if extra.Status != "" && extra.Status != "active" {
		return nil, newError(ErrSessionPending, fmt.Sprintf("session status is %q", clip(extra.Status, 32)), nil)
	}
	if v.authorizedParties != nil {
		switch azp := claims.AuthorizedParty; {
		case azp == "":
			return nil, newError(ErrWrongAuthorizedParty, "token has no azp", nil)
		case !v.authorizedParties[azp]:
			return nil, newError(ErrWrongAuthorizedParty, fmt.Sprintf("%q is not an authorized party", clip(azp, 128)), nil)
		}
	}

	household := claims.ActiveOrganizationID // v1 org_id or v2 o.id; the SDK folds both
	if household == "" {
		household = v.defaultHousehold
	}
	if household == "" {
		return nil, newError(ErrNoHousehold, "", nil)
	}

	p := &Principal{
		UserID:      claims.Subject,
		SessionID:   claims.SessionID,
		HouseholdID: household,
		Expiry:      time.Unix(*claims.Expiry, 0),
	}
	if dev {
		// Only the dev key may grant rooms beyond user and household: a
		// production token carrying this claim gets nothing from it.
		for _, r := range extra.ExtraRooms {
			if r != "" {
				p.ExtraRooms = append(p.ExtraRooms, r)
			}
		}
	}
	return p, nil
}

// keyFor picks the key for a token: the dev key when the kid says so and
// dev mode is on, Clerk's key otherwise.
func (v *Verifier) keyFor(ctx context.Context, kid string) (jwk *clerk.JSONWebKey, dev bool, err error) {
	if v.dev != nil && kid == v.dev.KeyID {
		return v.dev, true, nil
	}
	if v.prod == nil {
		return nil, false, newError(ErrUnknownKey, "only dev tokens are accepted and this one is not signed by the dev key", nil)
	}
	jwk, err = v.prod.key(ctx, kid)
	return jwk, false, err
}

// checkIssuer applies the issuer rule: dev tokens must come from
// [DevIssuer]; Clerk tokens must come from Config.Issuer or, without one,
// satisfy the SDK's rule. The dev issuer is refused outright on the
// production path, so a dev token never passes there, even if the dev
// public key were configured as CLERK_JWT_KEY.
func (v *Verifier) checkIssuer(iss string, dev bool) error {
	switch {
	case dev:
		if iss != DevIssuer {
			return newError(ErrWrongIssuer, fmt.Sprintf("dev tokens must be issued by %s", DevIssuer), nil)
		}
	case iss == DevIssuer:
		return newError(ErrWrongIssuer, "dev-issued tokens are accepted only in dev mode", nil)
	case v.issuer != "":
		if iss != v.issuer {
			return newError(ErrWrongIssuer, fmt.Sprintf("%q is not the configured issuer", clip(iss, 128)), nil)
		}
	case !strings.HasPrefix(iss, "https://clerk.") && !strings.Contains(iss, ".clerk.accounts"):
		return newError(ErrWrongIssuer, fmt.Sprintf("%q is not a Clerk issuer", clip(iss, 128)), nil)
	}
	return nil
}

// classifySDKError maps what jwt.Verify returns (after our own header and
// algorithm checks) to a sentinel. The SDK passes go-jose's errors through
// unwrapped, so errors.Is against go-jose's sentinels is reliable.
func classifySDKError(err error) *Error {
	switch {
	case errors.Is(err, jose.ErrCryptoFailure):
		return newError(ErrBadSignature, "", err)
	case errors.Is(err, josejwt.ErrExpired):
		return newError(ErrExpired, "", err)
	case errors.Is(err, josejwt.ErrNotValidYet):
		return newError(ErrNotYetValid, "nbf is in the future", err)
	case errors.Is(err, josejwt.ErrIssuedInTheFuture):
		return newError(ErrNotYetValid, "iat is in the future", err)
	default:
		// Parse errors and claims that do not decode (e.g. a string exp).
		return newError(ErrMalformedToken, "cannot decode the token's claims", err)
	}
}

// clip shortens attacker-controlled strings before they go into messages.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
