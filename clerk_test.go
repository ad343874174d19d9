package realtime_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"connectrpc.com/connect"
	jose "github.com/go-jose/go-jose/v3"
	josejwt "github.com/go-jose/go-jose/v3/jwt"

	realtime "github.com/honeydo/realtime"
	"github.com/honeydo/realtime/client"
	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
)

// clerkToken signs a Clerk v2 session token for user, in org when org is
// not empty, for party azp.
func clerkToken(t *testing.T, key *rsa.PrivateKey, user, org, azp string) string {
	t.Helper()
	now := time.Now()
	claims := map[string]any{
		"iss": "https://clerk.honeydo.test", "sub": user, "sid": "sess_" + user, "azp": azp,
		"iat": now.Unix(), "nbf": now.Add(-10 * time.Second).Unix(), "exp": now.Add(10 * time.Minute).Unix(),
		"v": 2, "sts": "active",
	}
	if org != "" {
		claims["o"] = map[string]any{"id": org}
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: "ins_1"}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := josejwt.Signed(signer).Claims(claims).CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestClerkOptions: with Clerk's PEM public key, the embedded service
// verifies Clerk session tokens (household = active organization, the
// default household otherwise, authorized parties enforced) for
// RealtimeService and the application's own handlers alike.
func TestClerkOptions(t *testing.T) {
	t.Parallel()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	const app = "https://app.honeydo.test"
	rt, err := realtime.New(context.Background(), realtime.Options{
		Clerk: realtime.ClerkOptions{
			JWTKey:            string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})),
			Issuer:            "https://clerk.honeydo.test",
			AuthorizedParties: []string{app},
		},
		DefaultHousehold: "solo",
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	const proc = "/acme.v1.Own/Who"
	own := func(ctx context.Context, _ *connect.Request[realtimev1.WhoAmIRequest]) (*connect.Response[realtimev1.WhoAmIResponse], error) {
		p, err := realtime.RequireUser(ctx)
		if err != nil {
			return nil, err
		}
		return connect.NewResponse(&realtimev1.WhoAmIResponse{UserId: p.UserID, HouseholdId: p.HouseholdID}), nil
	}
	mux := http.NewServeMux()
	rt.Mount(mux)
	mux.Handle(proc, connect.NewUnaryHandler(proc, own, connect.WithInterceptors(rt.Interceptor())))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	for _, tc := range []struct {
		name, org, azp, household string
		code                      connect.Code
	}{
		{"organization", "org_home", app, "org_home", 0},
		{"default household", "", app, "solo", 0},
		{"other party", "org_home", "https://evil.test", "", connect.CodeUnauthenticated},
	} {
		tok := clerkToken(t, key, "user_2alice", tc.org, tc.azp)
		rc := realtimeClient(srv, tok)
		res, err := rc.WhoAmI(context.Background(), connect.NewRequest(&realtimev1.WhoAmIRequest{}))
		ownRes, ownErr := connect.NewClient[realtimev1.WhoAmIRequest, realtimev1.WhoAmIResponse](srv.Client(), srv.URL+proc, client.BearerToken(tok)).
			CallUnary(context.Background(), connect.NewRequest(&realtimev1.WhoAmIRequest{}))
		if tc.code != 0 {
			if connect.CodeOf(err) != tc.code || connect.CodeOf(ownErr) != tc.code {
				t.Errorf("%s: WhoAmI %v, own handler %v; want %v from both", tc.name, err, ownErr, tc.code)
			}
			continue
		}
		if err != nil || ownErr != nil {
			t.Fatalf("%s: WhoAmI %v, own handler %v", tc.name, err, ownErr)
		}
		if res.Msg.GetHouseholdId() != tc.household || ownRes.Msg.GetHouseholdId() != tc.household || ownRes.Msg.GetUserId() != "user_2alice" {
			t.Errorf("%s: WhoAmI %v, own handler %v; want household %s", tc.name, res.Msg, ownRes.Msg, tc.household)
		}
	}
}
