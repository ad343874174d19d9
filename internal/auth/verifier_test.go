package auth

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	jose "github.com/go-jose/go-jose/v3"
)

// newPEMVerifier returns a networkless verifier for clerkKey at testNow,
// with cfg's other fields as given.
func newPEMVerifier(t *testing.T, cfg Config) *Verifier {
	t.Helper()
	cfg.JWTKeyPEM = publicPEM(t, clerkKey())
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return testNow }
	}
	v, err := NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestVerifyMatrix is the auth matrix: every way a credential can fail, with
// its sentinel, Connect code and reason, plus the successes they differ
// from.
func TestVerifyMatrix(t *testing.T) {
	t.Parallel()
	serviceKey := NewServiceKey()
	base := Config{
		AuthorizedParties: []string{testAZP, "https://other.honeydo.test/"},
		ServiceKeys:       map[string]string{"shopping": serviceKey},
	}
	v := newPEMVerifier(t, base)
	withDefault := base
	withDefault.DefaultHousehold = "house-default"
	vDefault := newPEMVerifier(t, withDefault)
	anyAZP := newPEMVerifier(t, Config{})
	strictIssuer := newPEMVerifier(t, Config{Issuer: "https://clerk.exact.test/"}) // the slash is forgiven

	sign := func(changes map[string]any) string {
		return signToken(t, clerkKey(), "ins_1", clerkClaims(testNow, changes))
	}
	valid := sign(nil)
	parts := strings.Split(valid, ".")

	tests := []struct {
		name   string
		v      *Verifier
		token  string
		want   *Principal // on success
		err    error      // sentinel on failure
		code   connect.Code
		reason string
	}{
		{
			name:  "valid v2 token",
			token: valid,
			want:  &Principal{UserID: "user_2alice", SessionID: "sess_2abc", HouseholdID: "org_house1", Expiry: testNow.Add(60 * time.Second)},
		},
		{
			name:  "valid v1 token with org_id",
			token: sign(map[string]any{"v": nil, "o": nil, "sts": nil, "org_id": "org_v1house"}),
			want:  &Principal{UserID: "user_2alice", SessionID: "sess_2abc", HouseholdID: "org_v1house", Expiry: testNow.Add(60 * time.Second)},
		},
		{
			name:  "no organization falls back to the default household",
			v:     vDefault,
			token: sign(map[string]any{"o": nil}),
			want:  &Principal{UserID: "user_2alice", SessionID: "sess_2abc", HouseholdID: "house-default", Expiry: testNow.Add(60 * time.Second)},
		},
		{
			name:  "active organization wins over the default household",
			v:     vDefault,
			token: valid,
			want:  &Principal{UserID: "user_2alice", SessionID: "sess_2abc", HouseholdID: "org_house1", Expiry: testNow.Add(60 * time.Second)},
		},
		{
			name:  "expired within the leeway",
			token: sign(map[string]any{"exp": testNow.Add(-3 * time.Second).Unix()}),
			want:  &Principal{UserID: "user_2alice", SessionID: "sess_2abc", HouseholdID: "org_house1", Expiry: testNow.Add(-3 * time.Second)},
		},
		{
			name:  "authorized party listed with a trailing slash",
			token: sign(map[string]any{"azp": "https://other.honeydo.test"}),
			want:  &Principal{UserID: "user_2alice", SessionID: "sess_2abc", HouseholdID: "org_house1", Expiry: testNow.Add(60 * time.Second)},
		},
		{
			name:  "any azp without an allowlist",
			v:     anyAZP,
			token: sign(map[string]any{"azp": nil}),
			want:  &Principal{UserID: "user_2alice", SessionID: "sess_2abc", HouseholdID: "org_house1", Expiry: testNow.Add(60 * time.Second)},
		},
		{
			name:  "exact configured issuer",
			v:     strictIssuer,
			token: sign(map[string]any{"iss": "https://clerk.exact.test"}),
			want:  &Principal{UserID: "user_2alice", SessionID: "sess_2abc", HouseholdID: "org_house1", Expiry: testNow.Add(60 * time.Second)},
		},
		{
			name:  "service key",
			token: serviceKey,
			want:  &Principal{UserID: "shopping", Service: true},
		},

		{name: "empty", token: "", err: ErrMissingToken, code: connect.CodeUnauthenticated, reason: "missing"},
		{name: "blank", token: "   ", err: ErrMissingToken, code: connect.CodeUnauthenticated, reason: "missing"},
		{name: "not a JWT", token: "hello", err: ErrMalformedToken, code: connect.CodeUnauthenticated, reason: "malformed"},
		{name: "two parts", token: parts[0] + "." + parts[1], err: ErrMalformedToken, code: connect.CodeUnauthenticated, reason: "malformed"},
		{name: "four parts", token: valid + ".x", err: ErrMalformedToken, code: connect.CodeUnauthenticated, reason: "malformed"},
		{name: "header not base64", token: "!!!." + parts[1] + "." + parts[2], err: ErrMalformedToken, code: connect.CodeUnauthenticated, reason: "malformed"},
		{name: "header not JSON", token: "bm90anNvbg." + parts[1] + "." + parts[2], err: ErrMalformedToken, code: connect.CodeUnauthenticated, reason: "malformed"},
		{name: "header without alg", token: "e30." + parts[1] + "." + parts[2], err: ErrMalformedToken, code: connect.CodeUnauthenticated, reason: "malformed"},
		{name: "payload not base64", token: parts[0] + ".!!!." + parts[2], err: ErrMalformedToken, code: connect.CodeUnauthenticated, reason: "malformed"},
		{name: "claims of the wrong type", token: sign(map[string]any{"exp": "tomorrow"}), err: ErrMalformedToken, code: connect.CodeUnauthenticated, reason: "malformed"},
		{name: "too long", token: strings.Repeat("a", maxTokenLen+1), err: ErrMalformedToken, code: connect.CodeUnauthenticated, reason: "malformed"},
		{name: "JSON serialization", token: `{"payload":"e30","signatures":[]}`, err: ErrMalformedToken, code: connect.CodeUnauthenticated, reason: "malformed"},
		{name: "expired", token: sign(map[string]any{"exp": testNow.Add(-time.Minute).Unix()}), err: ErrExpired, code: connect.CodeUnauthenticated, reason: "expired"},
		{name: "not valid yet", token: sign(map[string]any{"nbf": testNow.Add(time.Minute).Unix()}), err: ErrNotYetValid, code: connect.CodeUnauthenticated, reason: "not_yet_valid"},
		{name: "issued in the future", token: sign(map[string]any{"iat": testNow.Add(time.Minute).Unix()}), err: ErrNotYetValid, code: connect.CodeUnauthenticated, reason: "not_yet_valid"},
		{name: "no exp", token: sign(map[string]any{"exp": nil}), err: ErrNoExpiry, code: connect.CodeUnauthenticated, reason: "no_exp"},
		{name: "no sid", token: sign(map[string]any{"sid": nil}), err: ErrNoSession, code: connect.CodeUnauthenticated, reason: "no_sid"},
		{name: "no sub", token: sign(map[string]any{"sub": nil}), err: ErrNotUser, code: connect.CodeUnauthenticated, reason: "not_user"},
		{name: "sub not a user", token: sign(map[string]any{"sub": "org_house1"}), err: ErrNotUser, code: connect.CodeUnauthenticated, reason: "not_user"},
		{name: "readable sub from Clerk", token: sign(map[string]any{"sub": "alice"}), err: ErrNotUser, code: connect.CodeUnauthenticated, reason: "not_user"},
		{name: "signed by another key", token: signToken(t, otherKey(), "ins_1", clerkClaims(testNow, nil)), err: ErrBadSignature, code: connect.CodeUnauthenticated, reason: "bad_signature"},
		{name: "tampered payload", token: parts[0] + "." + strings.Split(sign(map[string]any{"sub": "user_2mallory"}), ".")[1] + "." + parts[2], err: ErrBadSignature, code: connect.CodeUnauthenticated, reason: "bad_signature"},
		{name: "signature stripped", token: parts[0] + "." + parts[1] + ".", err: ErrBadSignature, code: connect.CodeUnauthenticated, reason: "bad_signature"},
		{name: "HS256 with the public key as secret", token: signWith(t, jose.SigningKey{Algorithm: jose.HS256, Key: []byte(publicPEM(t, clerkKey()))}, clerkClaims(testNow, nil)), err: ErrBadSignature, code: connect.CodeUnauthenticated, reason: "bad_signature"},
		{name: "alg none", token: "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + parts[1] + ".", err: ErrBadSignature, code: connect.CodeUnauthenticated, reason: "bad_signature"},
		{name: "not a Clerk issuer", token: sign(map[string]any{"iss": "https://evil.example.com"}), err: ErrWrongIssuer, code: connect.CodeUnauthenticated, reason: "wrong_issuer"},
		{name: "dev issuer on production", token: sign(map[string]any{"iss": DevIssuer}), err: ErrWrongIssuer, code: connect.CodeUnauthenticated, reason: "wrong_issuer"},
		{name: "not the configured issuer", v: strictIssuer, token: valid, err: ErrWrongIssuer, code: connect.CodeUnauthenticated, reason: "wrong_issuer"},
		{name: "wrong azp", token: sign(map[string]any{"azp": "https://evil.example.com"}), err: ErrWrongAuthorizedParty, code: connect.CodeUnauthenticated, reason: "wrong_azp"},
		{name: "no azp with an allowlist", token: sign(map[string]any{"azp": nil}), err: ErrWrongAuthorizedParty, code: connect.CodeUnauthenticated, reason: "wrong_azp"},
		{name: "pending session", token: sign(map[string]any{"sts": "pending"}), err: ErrSessionPending, code: connect.CodeUnauthenticated, reason: "pending"},
		{name: "unknown session status", token: sign(map[string]any{"sts": "weird"}), err: ErrSessionPending, code: connect.CodeUnauthenticated, reason: "pending"},
		{name: "no organization and no default", token: sign(map[string]any{"o": nil}), err: ErrNoHousehold, code: connect.CodePermissionDenied, reason: "no_household"},
		{name: "v2 without o.id and no default", token: sign(map[string]any{"o": map[string]any{"id": ""}}), err: ErrNoHousehold, code: connect.CodePermissionDenied, reason: "no_household"},
		{name: "unknown service key", token: NewServiceKey(), err: ErrUnknownServiceKey, code: connect.CodeUnauthenticated, reason: "unknown_service_key"},
		{name: "near miss service key", token: serviceKey[:len(serviceKey)-1] + flip(serviceKey[len(serviceKey)-1]), err: ErrUnknownServiceKey, code: connect.CodeUnauthenticated, reason: "unknown_service_key"},
		{name: "short service key", token: "hds_short", err: ErrMalformedToken, code: connect.CodeUnauthenticated, reason: "malformed"},
		{name: "service key with bad characters", token: serviceKey + "!", err: ErrMalformedToken, code: connect.CodeUnauthenticated, reason: "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ver := tt.v
			if ver == nil {
				ver = v
			}
			p, err := ver.Verify(context.Background(), tt.token)
			if tt.err == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				assertPrincipal(t, p, tt.want)
				return
			}
			if err == nil {
				t.Fatalf("Verify succeeded with %+v, want %v", p, tt.err)
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("error %q, want %v", err, tt.err)
			}
			if _, ok := errors.AsType[*Error](err); !ok {
				t.Errorf("error %T is not *Error", err)
			}
			if got := Code(err); got != tt.code {
				t.Errorf("Code = %v, want %v", got, tt.code)
			}
			if got := Reason(err); got != tt.reason {
				t.Errorf("Reason = %q, want %q", got, tt.reason)
			}
			if len(tt.token) > 8 && strings.Contains(err.Error(), strings.TrimSpace(tt.token)) {
				t.Errorf("error message echoes the credential: %q", err)
			}
		})
	}
}

func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

func assertPrincipal(t *testing.T, got, want *Principal) {
	t.Helper()
	if got == nil {
		t.Fatal("nil principal")
	}
	if got.UserID != want.UserID || got.SessionID != want.SessionID || got.HouseholdID != want.HouseholdID ||
		!got.Expiry.Equal(want.Expiry) || got.Service != want.Service || strings.Join(got.ExtraRooms, ",") != strings.Join(want.ExtraRooms, ",") {
		t.Errorf("principal = %+v, want %+v", *got, *want)
	}
}

func TestVerifyLeeway(t *testing.T) {
	t.Parallel()
	expiredBy := func(d time.Duration) string {
		return signToken(t, clerkKey(), "", clerkClaims(testNow, map[string]any{"exp": testNow.Add(-d).Unix()}))
	}
	tests := []struct {
		name    string
		leeway  time.Duration
		token   string
		wantErr error
	}{
		{"default 5s accepts 4s late", 0, expiredBy(4 * time.Second), nil},
		{"default 5s refuses 6s late", 0, expiredBy(6 * time.Second), ErrExpired},
		{"30s accepts 20s late", 30 * time.Second, expiredBy(20 * time.Second), nil},
		{"negative means none", -1, expiredBy(time.Second), ErrExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := newPEMVerifier(t, Config{Leeway: tt.leeway})
			_, err := v.Verify(context.Background(), tt.token)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("Verify = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestVerifyPEMFromOneLineEnv(t *testing.T) {
	t.Parallel()
	oneLine := strings.ReplaceAll(strings.TrimSpace(publicPEM(t, clerkKey())), "\n", `\n`)
	v, err := NewVerifier(Config{JWTKeyPEM: oneLine, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), signToken(t, clerkKey(), "", clerkClaims(testNow, nil))); err != nil {
		t.Fatal(err)
	}
}

func TestOnFailureCountsReasons(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	got := map[string]int{}
	v := newPEMVerifier(t, Config{OnFailure: func(reason string) {
		mu.Lock()
		defer mu.Unlock()
		got[reason]++
	}})
	ctx := context.Background()
	_, _ = v.Verify(ctx, "")
	_, _ = v.Verify(ctx, "garbage")
	_, _ = v.Verify(ctx, signToken(t, clerkKey(), "", clerkClaims(testNow, map[string]any{"exp": testNow.Add(-time.Hour).Unix()})))
	_, _ = v.Verify(ctx, signToken(t, clerkKey(), "", clerkClaims(testNow, map[string]any{"exp": testNow.Add(-time.Hour).Unix()})))
	if _, err := v.Verify(ctx, signToken(t, clerkKey(), "", clerkClaims(testNow, nil))); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"missing": 1, "malformed": 1, "expired": 2}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != len(want) {
		t.Fatalf("reasons = %v, want %v", got, want)
	}
	for k, n := range want {
		if got[k] != n {
			t.Fatalf("reasons = %v, want %v", got, want)
		}
	}
}

func TestNewVerifierRejectsBadConfig(t *testing.T) {
	t.Parallel()
	good := NewServiceKey()
	pemKey := publicPEM(t, clerkKey())
	tests := []struct {
		name string
		cfg  Config
		want string // substring of the error
	}{
		{"nothing to verify with", Config{}, "no session token key"},
		{"only service keys", Config{ServiceKeys: map[string]string{"a": good}}, "no session token key"},
		{"publishable key as secret", Config{SecretKey: "pk_test_abc"}, "does not look like a Clerk secret key"},
		{"bad API URL", Config{SecretKey: testSecret, APIURL: "api.clerk.com"}, "not an http(s) URL"},
		{"issuer without scheme", Config{JWTKeyPEM: pemKey, Issuer: "clerk.honeydo.test"}, "not an https origin"},
		{"plain-http issuer", Config{JWTKeyPEM: pemKey, Issuer: "http://clerk.honeydo.test"}, "not an https origin"},
		{"issuer with a path", Config{JWTKeyPEM: pemKey, Issuer: "https://clerk.honeydo.test/v1"}, "not an https origin"},
		{"PEM garbage", Config{JWTKeyPEM: "not a key"}, "CLERK_JWT_KEY"},
		{"PEM private key", Config{JWTKeyPEM: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}, "CLERK_JWT_KEY"},
		{"short service key", Config{JWTKeyPEM: pemKey, ServiceKeys: map[string]string{"a": "hds_short"}}, `ServiceKeys["a"]`},
		{"service key without prefix", Config{JWTKeyPEM: pemKey, ServiceKeys: map[string]string{"a": strings.Repeat("x", 40)}}, `ServiceKeys["a"]`},
		{"empty service name", Config{JWTKeyPEM: pemKey, ServiceKeys: map[string]string{"": good}}, "empty service name"},
		{"one key, two services", Config{JWTKeyPEM: pemKey, ServiceKeys: map[string]string{"a": good, "b": good}}, "same key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewVerifier(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewVerifier = %v, want an error containing %q", err, tt.want)
			}
			if tt.cfg.SecretKey != "" && strings.Contains(err.Error(), tt.cfg.SecretKey) {
				t.Errorf("error echoes the secret key: %v", err)
			}
		})
	}
}
