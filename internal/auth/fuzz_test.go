package auth

import (
	"context"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
)

// FuzzVerifyToken feeds arbitrary credentials to a verifier that has every
// path enabled (Clerk PEM key, dev key, service keys). Verify must never
// panic, must return exactly one of a principal and an error, and its
// errors must be classified and must not echo the credential. Seeds beyond
// testdata/fuzz/FuzzVerifyToken: tokens that verify, made at start-up.
func FuzzVerifyToken(f *testing.F) {
	dev := sharedDevKey(f)
	serviceKey := NewServiceKey()
	v, err := NewVerifier(Config{
		JWTKeyPEM:         publicPEM(f, clerkKey()),
		Dev:               dev,
		ServiceKeys:       map[string]string{"shopping": serviceKey},
		AuthorizedParties: []string{testAZP},
		DefaultHousehold:  "house-default",
		Now:               func() time.Time { return testNow },
	})
	if err != nil {
		f.Fatal(err)
	}
	devToken, _, err := dev.Mint(MintOptions{UserID: "alice", HouseholdID: "h1", AuthorizedParty: testAZP, ExtraRooms: []string{"room:bench"}, Now: testNow})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(devToken)
	f.Add(signToken(f, clerkKey(), "ins_1", clerkClaims(testNow, nil)))
	f.Add(signToken(f, clerkKey(), "ins_1", clerkClaims(testNow, map[string]any{"o": nil, "org_id": "org_1", "v": nil})))
	f.Add(serviceKey)
	f.Add(dev.ServiceKey())

	f.Fuzz(func(t *testing.T, token string) {
		p, err := v.Verify(context.Background(), token)
		if (p == nil) == (err == nil) {
			t.Fatalf("Verify returned principal %v and error %v", p, err)
		}
		if err != nil {
			switch Code(err) {
			case connect.CodeUnauthenticated, connect.CodePermissionDenied, connect.CodeUnavailable:
			default:
				t.Fatalf("error %q has code %v", err, Code(err))
			}
			if Reason(err) == "other" {
				t.Fatalf("unclassified error %q", err)
			}
			if trimmed := strings.TrimSpace(token); len(trimmed) > 20 && strings.Contains(err.Error(), trimmed) {
				t.Fatalf("error %q echoes the credential", err)
			}
			return
		}
		if p.UserID == "" || (!p.Service && (p.HouseholdID == "" || p.SessionID == "" || p.Expiry.IsZero())) {
			t.Fatalf("incomplete principal %+v", *p)
		}
	})
}
