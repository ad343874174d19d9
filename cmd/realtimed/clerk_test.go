package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	jose "github.com/go-jose/go-jose/v3"
	josejwt "github.com/go-jose/go-jose/v3/jwt"

	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	systemv1 "github.com/honeydo/realtime/gen/honeydo/system/v1"
	"github.com/honeydo/realtime/internal/auth"
	"github.com/honeydo/realtime/internal/testkit/poll"
)

const (
	e2eSecret = "sk_test_e2e_standin"
	e2eIssuer = "https://clerk.honeydo.test"
)

// jwksStandIn is Clerk's GET /v1/jwks on a loopback port: it serves the
// current public keys to callers bearing the secret key and counts the
// fetches.
type jwksStandIn struct {
	srv     *httptest.Server
	fetches atomic.Int64

	mu   sync.Mutex
	keys map[string]*rsa.PrivateKey
}

func newJWKSStandIn(t *testing.T, keys map[string]*rsa.PrivateKey) *jwksStandIn {
	t.Helper()
	s := &jwksStandIn{keys: keys}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/v1/jwks" {
			http.NotFound(w, r)
			return
		}
		s.fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("Authorization") != "Bearer "+e2eSecret {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"errors":[{"code":"authentication_invalid","message":"Unauthorized"}]}`))
			return
		}
		s.mu.Lock()
		set := jose.JSONWebKeySet{}
		for kid, k := range s.keys {
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: &k.PublicKey, KeyID: kid, Algorithm: "RS256", Use: "sig"})
		}
		s.mu.Unlock()
		_ = json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *jwksStandIn) setKeys(keys map[string]*rsa.PrivateKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = keys
}

func rsaKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// clerkToken signs a Clerk v2 session token for user in org with key
// under kid, issued by iss, valid for ten minutes.
func clerkToken(t *testing.T, key *rsa.PrivateKey, kid, iss, user, org string) string {
	t.Helper()
	now := time.Now()
	claims := map[string]any{
		"iss": iss, "sub": user, "sid": "sess_" + user,
		"iat": now.Unix(), "nbf": now.Add(-10 * time.Second).Unix(), "exp": now.Add(10 * time.Minute).Unix(),
		"v": 2, "sts": "active", "o": map[string]any{"id": org},
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := josejwt.Signed(signer).Claims(claims).CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestClerkEndToEnd runs the production configuration of the realtimed
// binary, CLERK_SECRET_KEY with the Clerk API pointed at a local JWKS
// stand-in and the issuer pinned:
//   - a token of another issuer, one the SDK's loose rule would pass, is
//     refused;
//   - after a key rotation a token signed by the new key is accepted after
//     exactly one refetch of the key set;
//   - with the stand-in down, a new stream whose key must be fetched fails
//     with Unavailable, while the streams already open keep receiving
//     events and tokens of cached keys keep working.
func TestClerkEndToEnd(t *testing.T) {
	t.Parallel()
	key1, key2, key3 := rsaKey(t), rsaKey(t), rsaKey(t)
	jwks := newJWKSStandIn(t, map[string]*rsa.PrivateKey{"ins_key1": key1})
	serviceKey := auth.NewServiceKey()
	p := startBinary(t,
		[]string{"CLERK_SECRET_KEY=" + e2eSecret, "CLERK_API_URL=" + jwks.srv.URL + "/v1"},
		"--clerk-issuer", e2eIssuer, "--service-keys", "e2e="+serviceKey)
	ctx := context.Background()
	publisher := p.realtimeClient(t, serviceKey)
	publish := func(text string) {
		t.Helper()
		_, err := publisher.Publish(ctx, connect.NewRequest(&realtimev1.PublishRequest{
			Target: &realtimev1.Target{To: &realtimev1.Target_HouseholdId{HouseholdId: "org_house1"}},
			Event:  &realtimev1.Event{Payload: &realtimev1.Event_Notification{Notification: &systemv1.Notification{Message: text}}},
		}))
		if err != nil {
			t.Fatalf("Publish(%s): %v", text, err)
		}
	}
	expect := func(s *liveStream, text string) {
		t.Helper()
		if got := s.next(t).GetNotification().GetMessage(); got != text {
			t.Fatalf("got event %q, want %q", got, text)
		}
	}

	alice, err := openLiveStream(t, p.realtimeClient(t, clerkToken(t, key1, "ins_key1", e2eIssuer, "user_2alice", "org_house1")))
	if err != nil {
		t.Fatalf("stream with the served key: %v", err)
	}
	if n := jwks.fetches.Load(); n != 1 {
		t.Fatalf("%d JWKS fetches for the first token, want 1", n)
	}

	// Pinned issuer: "https://clerk.…" passes the SDK's rule, not ours.
	forged := clerkToken(t, key1, "ins_key1", "https://clerk.other-instance.example", "user_2alice", "org_house1")
	_, err = p.realtimeClient(t, forged).WhoAmI(ctx, connect.NewRequest(&realtimev1.WhoAmIRequest{}))
	if connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("token of another issuer: %v, want Unauthenticated", err)
	}

	// Rotation: Clerk serves the new key beside the old one. Until the
	// refetch interval (5 s) has passed since the last fetch, the unknown
	// kid is refused without a fetch; then one fetch finds it.
	jwks.setKeys(map[string]*rsa.PrivateKey{"ins_key1": key1, "ins_key2": key2})
	bobToken := clerkToken(t, key2, "ins_key2", e2eIssuer, "user_2bob", "org_house1")
	bobClient := p.realtimeClient(t, bobToken)
	rotatedAt := time.Now()
	poll.Eventually(t, 30*time.Second, 200*time.Millisecond, func() error {
		_, err := bobClient.WhoAmI(ctx, connect.NewRequest(&realtimev1.WhoAmIRequest{}))
		return err
	})
	if n := jwks.fetches.Load(); n != 2 {
		t.Fatalf("%d JWKS fetches after the rotation, want 2 (exactly one refetch)", n)
	}
	t.Logf("rotated key accepted %v after the rotation, after one refetch", time.Since(rotatedAt).Round(time.Millisecond))
	bob, err := openLiveStream(t, bobClient)
	if err != nil {
		t.Fatalf("stream with the rotated key: %v", err)
	}
	if n := jwks.fetches.Load(); n != 2 {
		t.Fatalf("%d JWKS fetches, want 2: the rotated key is cached", n)
	}
	publish("before the outage")
	expect(alice, "before the outage")
	expect(bob, "before the outage")

	// Outage: Clerk's API is unreachable (connection refused).
	jwks.srv.Close()
	carolClient := p.realtimeClient(t, clerkToken(t, key3, "ins_key3", e2eIssuer, "user_2carol", "org_house1"))
	poll.Eventually(t, 30*time.Second, 200*time.Millisecond, func() error {
		_, err := openLiveStream(t, carolClient)
		if connect.CodeOf(err) != connect.CodeUnavailable {
			return fmt.Errorf("new stream with a key to fetch: %v, want Unavailable", err)
		}
		return nil
	})
	publish("during the outage")
	expect(alice, "during the outage")
	expect(bob, "during the outage")
	// Keys fetched before the outage stay usable for new streams too.
	dave, err := openLiveStream(t, p.realtimeClient(t, clerkToken(t, key1, "ins_key1", e2eIssuer, "user_2dave", "org_house1")))
	if err != nil {
		t.Fatalf("new stream with a cached key during the outage: %v", err)
	}
	publish("still during the outage")
	for _, s := range []*liveStream{alice, bob, dave} {
		expect(s, "still during the outage")
	}
}
