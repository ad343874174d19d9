package auth

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"maps"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v3"
	josejwt "github.com/go-jose/go-jose/v3/jwt"
)

// Test keys are generated once per test binary: RSA generation is slow and
// nothing depends on the keys being fresh.
var (
	clerkKey   = sync.OnceValue(func() *rsa.PrivateKey { return mustRSAKey() })
	rotatedKey = sync.OnceValue(func() *rsa.PrivateKey { return mustRSAKey() })
	otherKey   = sync.OnceValue(func() *rsa.PrivateKey { return mustRSAKey() })
)

func mustRSAKey() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}

// testNow is the fixed "now" of tests that do not advance time.
var testNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

const (
	testIssuer = "https://clerk.honeydo.test"
	testAZP    = "https://app.honeydo.test"
	testSecret = "sk_test_localstandin"
)

// fakeClock is a settable clock for Config.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// clerkClaims returns the claims of a valid Clerk v2 session token issued
// at now, with changes applied (a nil value deletes the claim).
func clerkClaims(now time.Time, changes map[string]any) map[string]any {
	c := map[string]any{
		"iss": testIssuer,
		"sub": "user_2alice",
		"sid": "sess_2abc",
		"iat": now.Unix(),
		"nbf": now.Add(-10 * time.Second).Unix(),
		"exp": now.Add(60 * time.Second).Unix(),
		"azp": testAZP,
		"v":   2,
		"o":   map[string]any{"id": "org_house1", "rol": "admin", "slg": "house-1"},
		"sts": "active",
	}
	maps.Copy(c, changes)
	for k, v := range c {
		if v == nil {
			delete(c, k)
		}
	}
	return c
}

// signToken signs claims with key (RS256) under kid ("" for none).
func signToken(t testing.TB, key *rsa.PrivateKey, kid string, claims map[string]any) string {
	t.Helper()
	return signWith(t, jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, claims)
}

func signWith(t testing.TB, sk jose.SigningKey, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(sk, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := josejwt.Signed(signer).Claims(claims).CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func publicPEM(t testing.TB, key *rsa.PrivateKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// clerkStandIn emulates Clerk's GET /v1/jwks: it serves the current key
// set to requests bearing the secret key, counts them, and can be told to
// fail.
type clerkStandIn struct {
	*httptest.Server
	fetches atomic.Int64
	delay   time.Duration

	mu   sync.Mutex
	keys map[string]*rsa.PrivateKey
	down bool
}

func newClerkStandIn(t *testing.T, keys map[string]*rsa.PrivateKey) *clerkStandIn {
	t.Helper()
	s := &clerkStandIn{keys: keys}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// APIURL is what Config.APIURL should be.
func (s *clerkStandIn) APIURL() string { return s.URL + "/v1" }

func (s *clerkStandIn) setKeys(keys map[string]*rsa.PrivateKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = keys
}

func (s *clerkStandIn) setDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

func (s *clerkStandIn) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet || r.URL.Path != "/v1/jwks" {
		http.NotFound(w, r)
		return
	}
	s.fetches.Add(1)
	time.Sleep(s.delay)
	s.mu.Lock()
	down, keys := s.down, s.keys
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if r.Header.Get("Authorization") != "Bearer "+testSecret {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"errors":[{"code":"authentication_invalid","message":"Unauthorized"}]}`))
		return
	}
	if down {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"errors":[{"code":"service_unavailable","message":"down"}]}`))
		return
	}
	set := jose.JSONWebKeySet{}
	for kid, k := range keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: &k.PublicKey, KeyID: kid, Algorithm: "RS256", Use: "sig"})
	}
	_ = json.NewEncoder(w).Encode(set)
}
