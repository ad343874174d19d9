package auth

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clerk/clerk-sdk-go/v2/jwt"
)

// sharedDevKey is one dev key for the tests that only mint and verify.
var (
	sharedDevKeyOnce sync.Once
	sharedDevKeyVal  *DevKey
	sharedDevKeyErr  error
)

func sharedDevKey(t testing.TB) *DevKey {
	t.Helper()
	sharedDevKeyOnce.Do(func() {
		dir, err := os.MkdirTemp("", "auth-devkey-")
		if err != nil {
			sharedDevKeyErr = err
			return
		}
		sharedDevKeyVal, sharedDevKeyErr = LoadOrCreateDevKey(dir)
		// The key is in memory now; the directory is not needed.
		_ = os.RemoveAll(dir)
	})
	if sharedDevKeyErr != nil {
		t.Fatal(sharedDevKeyErr)
	}
	return sharedDevKeyVal
}

func newDevVerifier(t *testing.T, cfg Config) *Verifier {
	t.Helper()
	cfg.Dev = sharedDevKey(t)
	v, err := NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestLoadOrCreateDevKey(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data", "nested")
	k1, err := LoadOrCreateDevKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, DevKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	if k1.Path() != filepath.Join(dir, DevKeyFile) {
		t.Errorf("Path = %q", k1.Path())
	}
	if !strings.HasPrefix(k1.KeyID(), "dev-") || len(k1.KeyID()) != len("dev-")+12 {
		t.Errorf("KeyID = %q, want dev-<12 hex>", k1.KeyID())
	}
	if !validServiceKey(k1.ServiceKey()) {
		t.Errorf("ServiceKey %q is not a valid service key", k1.ServiceKey())
	}
	if !strings.HasPrefix(k1.PublicKeyPEM(), "-----BEGIN PUBLIC KEY-----") {
		t.Errorf("PublicKeyPEM = %q", k1.PublicKeyPEM())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d files, want only the key (temporary file left behind?)", len(entries))
	}

	// A restart loads the same key: same kid, same service key, and tokens
	// minted before still verify.
	tok, _, err := k1.Mint(MintOptions{UserID: "alice", HouseholdID: "h1"})
	if err != nil {
		t.Fatal(err)
	}
	k2, err := LoadOrCreateDevKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if k2.KeyID() != k1.KeyID() || k2.ServiceKey() != k1.ServiceKey() {
		t.Fatal("reloaded key differs")
	}
	v, err := NewVerifier(Config{Dev: k2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("token minted before the restart: %v", err)
	}
}

func TestLoadOrCreateDevKeyConcurrently(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const n = 4
	keys := make([]*DevKey, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { keys[i], errs[i] = LoadOrCreateDevKey(dir) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if keys[i].KeyID() != keys[0].KeyID() {
			t.Fatalf("creator %d got another key", i)
		}
	}
}

func TestLoadOrCreateDevKeyFileProblems(t *testing.T) {
	t.Parallel()
	t.Run("loose mode is tightened", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		if _, err := LoadOrCreateDevKey(dir); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, DevKeyFile)
		if err := os.Chmod(path, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadOrCreateDevKey(dir); err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(path)
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("mode %v, want 0600", fi.Mode().Perm())
		}
	})
	t.Run("no directory", func(t *testing.T) {
		t.Parallel()
		if _, err := LoadOrCreateDevKey(""); err == nil {
			t.Fatal("accepted an empty directory")
		}
	})
	for name, content := range map[string]string{
		"not PEM":    "hello",
		"public key": sharedDevKey(t).PublicKeyPEM(),
		"bad DER":    "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, DevKeyFile), []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := LoadOrCreateDevKey(dir); err == nil {
				t.Fatal("loaded a broken key file")
			}
		})
	}
}

func TestMintedTokenShape(t *testing.T) {
	t.Parallel()
	k := sharedDevKey(t)
	now := time.Now().Truncate(time.Second)
	tok, exp, err := k.Mint(MintOptions{UserID: "alice", HouseholdID: "h1", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if !exp.Equal(now.Add(DefaultDevTokenTTL)) {
		t.Errorf("expiry %v, want %v", exp, now.Add(DefaultDevTokenTTL))
	}
	// Decode with the SDK to see the token as Clerk-aware code would.
	d, err := jwt.Decode(context.Background(), &jwt.DecodeParams{Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	if d.KeyID != k.KeyID() || d.Issuer != DevIssuer || d.Subject != "alice" || *d.Expiry != exp.Unix() || d.IssuedAt == nil || d.NotBefore == nil {
		t.Errorf("registered claims = %+v", d.RegisteredClaims)
	}
	if d.Extra["v"] != float64(2) || d.Extra["sts"] != "active" || !strings.HasPrefix(d.Extra["sid"].(string), "sess_dev_") {
		t.Errorf("clerk claims = %v", d.Extra)
	}
	if o, _ := d.Extra["o"].(map[string]any); o["id"] != "h1" {
		t.Errorf("o = %v", d.Extra["o"])
	}
	for _, absent := range []string{"azp", "rtd_rooms"} {
		if _, ok := d.Extra[absent]; ok {
			t.Errorf("%s set without being asked for", absent)
		}
	}
}

func TestDevTokens(t *testing.T) {
	t.Parallel()
	k := sharedDevKey(t)
	dev := newDevVerifier(t, Config{DefaultHousehold: "house-default", AuthorizedParties: []string{"http://127.0.0.1:8080"}})
	devAnyAZP := newDevVerifier(t, Config{})
	// A production verifier someone pointed at the dev public key.
	prodWithDevPEM, err := NewVerifier(Config{JWTKeyPEM: k.PublicKeyPEM()})
	if err != nil {
		t.Fatal(err)
	}
	prod := newPEMVerifier(t, Config{})
	// Dev mode with Clerk configured as well.
	devAndClerk := newDevVerifier(t, Config{JWTKeyPEM: publicPEM(t, clerkKey())})

	mint := func(o MintOptions) string {
		tok, _, err := k.Mint(o)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	rooms := []string{"room:bench", "room:bench-2"}
	alice := MintOptions{UserID: "alice", HouseholdID: "h1", SessionID: "sess_a", AuthorizedParty: "http://127.0.0.1:8080", ExtraRooms: rooms}

	tests := []struct {
		name      string
		v         *Verifier
		token     string
		wantErr   error
		wantUser  string
		wantHouse string
		wantRooms []string
	}{
		{name: "dev verifier accepts a readable user with rooms", v: dev, token: mint(alice), wantUser: "alice", wantHouse: "h1", wantRooms: rooms},
		{name: "no household falls back to the default", v: dev, token: mint(MintOptions{UserID: "bob", AuthorizedParty: "http://127.0.0.1:8080"}), wantUser: "bob", wantHouse: "house-default"},
		{name: "no household and no default", v: devAnyAZP, token: mint(MintOptions{UserID: "bob"}), wantErr: ErrNoHousehold},
		{name: "dev tokens obey the azp allowlist", v: dev, token: mint(MintOptions{UserID: "bob", HouseholdID: "h1"}), wantErr: ErrWrongAuthorizedParty},
		{name: "expired dev token", v: dev, token: mint(MintOptions{UserID: "alice", HouseholdID: "h1", AuthorizedParty: "http://127.0.0.1:8080", Now: time.Now().Add(-time.Hour)}), wantErr: ErrExpired},
		{name: "production verifier with the dev key as CLERK_JWT_KEY", v: prodWithDevPEM, token: mint(alice), wantErr: ErrWrongIssuer},
		{name: "production verifier with Clerk's key", v: prod, token: mint(alice), wantErr: ErrBadSignature},
		{name: "dev and Clerk: dev token", v: devAndClerk, token: mint(alice), wantUser: "alice", wantHouse: "h1", wantRooms: rooms},
		{
			name:      "dev and Clerk: Clerk token gets no extra rooms",
			v:         devAndClerk,
			token:     signToken(t, clerkKey(), "ins_1", clerkClaims(time.Now(), map[string]any{"rtd_rooms": []string{"room:bench"}})),
			wantUser:  "user_2alice",
			wantHouse: "org_house1",
		},
		{
			name:    "dev and Clerk: readable sub from Clerk's key",
			v:       devAndClerk,
			token:   signToken(t, clerkKey(), "ins_1", clerkClaims(time.Now(), map[string]any{"sub": "alice"})),
			wantErr: ErrNotUser,
		},
		{
			name:    "dev-only verifier: Clerk token",
			v:       devAnyAZP,
			token:   signToken(t, clerkKey(), "ins_1", clerkClaims(time.Now(), nil)),
			wantErr: ErrUnknownKey,
		},
		{
			name:    "dev kid on a token with a Clerk issuer",
			v:       devAnyAZP,
			token:   signWithDevKey(t, k, clerkClaims(time.Now(), nil)),
			wantErr: ErrWrongIssuer,
		},
		{
			name:    "dev kid, signed by another key",
			v:       devAnyAZP,
			token:   signToken(t, otherKey(), k.KeyID(), clerkClaims(time.Now(), map[string]any{"iss": DevIssuer})),
			wantErr: ErrBadSignature,
		},
		{name: "dev service key", v: dev, token: k.ServiceKey(), wantUser: DevServiceName},
		{name: "dev service key outside dev mode", v: prodWithDevPEM, token: k.ServiceKey(), wantErr: ErrUnknownServiceKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := tt.v.Verify(context.Background(), tt.token)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Verify = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.UserID != tt.wantUser || p.HouseholdID != tt.wantHouse || strings.Join(p.ExtraRooms, ",") != strings.Join(tt.wantRooms, ",") {
				t.Errorf("principal = %+v", *p)
			}
			if p.Service != (tt.wantUser == DevServiceName) {
				t.Errorf("Service = %v", p.Service)
			}
		})
	}
}

// signWithDevKey signs arbitrary claims with the dev key and its kid, to
// check that the dev path still applies its own rules.
func signWithDevKey(t *testing.T, k *DevKey, claims map[string]any) string {
	t.Helper()
	return signToken(t, k.priv, k.KeyID(), claims)
}

func TestMintRejectsBadOptions(t *testing.T) {
	t.Parallel()
	k := sharedDevKey(t)
	for name, o := range map[string]MintOptions{
		"no user":          {},
		"user with space":  {UserID: "a b"},
		"empty extra room": {UserID: "a", ExtraRooms: []string{""}},
		"room with space":  {UserID: "a", ExtraRooms: []string{"room: x"}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if _, _, err := k.Mint(o); err == nil {
				t.Fatal("Mint succeeded")
			}
		})
	}
}

func TestMintDefaults(t *testing.T) {
	t.Parallel()
	k := sharedDevKey(t)
	v := newDevVerifier(t, Config{DefaultHousehold: "h"})
	a, _, err := k.Mint(MintOptions{UserID: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	b, exp, err := k.Mint(MintOptions{UserID: "alice", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	pa, pb := mustVerify(t, v, a), mustVerify(t, v, b)
	if pa.SessionID == pb.SessionID || !strings.HasPrefix(pa.SessionID, "sess_dev_") {
		t.Errorf("session ids %q and %q: want distinct generated ids", pa.SessionID, pb.SessionID)
	}
	if !pb.Expiry.Equal(exp) || time.Until(exp) < 59*time.Minute {
		t.Errorf("expiry %v, want an hour from now", pb.Expiry)
	}
}
