package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/clerk/clerk-sdk-go/v2"
	jose "github.com/go-jose/go-jose/v3"
	josejwt "github.com/go-jose/go-jose/v3/jwt"
)

// DevIssuer is the iss of dev tokens. The .invalid TLD (RFC 2606) can never
// be a real issuer, and a production verifier refuses it by name.
const DevIssuer = "https://dev.realtimed.invalid"

// DevKeyFile is the name of the dev key's file in its directory.
const DevKeyFile = "dev-signing-key.pem"

// DefaultDevTokenTTL is the lifetime of a dev token when [MintOptions.TTL]
// is zero: as short as Clerk's session tokens, so dev mode exercises the
// same refresh paths.
const DefaultDevTokenTTL = 60 * time.Second

// devKeyBits is the RSA modulus size of a new dev key.
const devKeyBits = 2048

// DevKey is the local signing key of dev mode. It is safe for concurrent
// use.
type DevKey struct {
	priv       *rsa.PrivateKey
	path       string
	jwk        *clerk.JSONWebKey // public half, for the verifier
	publicPEM  string
	serviceKey string
}

// LoadOrCreateDevKey loads the dev key from dir/[DevKeyFile], or creates a
// new RSA-2048 key there (file mode 0600, directory created 0700 if
// missing). Two processes starting at once end up with the same key: the
// file appears atomically and the loser of the race loads the winner's.
func LoadOrCreateDevKey(dir string) (*DevKey, error) {
	if dir == "" {
		// An empty dir would silently mean the working directory.
		return nil, errors.New("auth: dev key: no directory given")
	}
	path := filepath.Join(dir, DevKeyFile)
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		raw, err = createDevKeyFile(dir, path)
	}
	if err != nil {
		return nil, fmt.Errorf("auth: dev key: %w", err)
	}
	priv, err := parsePrivateKeyPEM(raw)
	if err != nil {
		return nil, fmt.Errorf("auth: dev key %s: %w", path, err)
	}
	// The key signs tokens for any user: keep it private even if the file
	// was created or copied with a looser mode.
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(path, 0o600); err != nil {
			return nil, fmt.Errorf("auth: dev key: %w", err)
		}
	}
	return newDevKey(priv, path)
}

func createDevKeyFile(dir, path string) ([]byte, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	priv, err := rsa.GenerateKey(rand.Reader, devKeyBits)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	raw := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})

	// Write a temporary file (CreateTemp makes it 0600), then link it into
	// place: the link fails if the file exists, so no reader ever sees a
	// half-written key and a concurrent creator's key is never replaced.
	tmp, err := os.CreateTemp(dir, ".dev-signing-key-*.tmp")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(raw); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return os.ReadFile(path)
		}
		return nil, err
	}
	return raw, nil
}

func parsePrivateKeyPEM(raw []byte) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode(raw)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block is %q, want a private key", block.Type)
	}
	if err != nil {
		return nil, err
	}
	priv, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("key is %T, want RSA", key)
	}
	if priv.N.BitLen() < devKeyBits {
		return nil, fmt.Errorf("RSA key has %d bits, want at least %d", priv.N.BitLen(), devKeyBits)
	}
	return priv, nil
}

func newDevKey(priv *rsa.PrivateKey, path string) (*DevKey, error) {
	pubDER, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		return nil, err
	}
	publicPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}))
	// The verifier gets the public key the way it gets CLERK_JWT_KEY, so
	// dev tokens take exactly the production verification path.
	jwk, err := clerk.JSONWebKeyFromPEM(publicPEM)
	if err != nil {
		return nil, err
	}
	fp := sha256.Sum256(pubDER)
	jwk.KeyID = "dev-" + hex.EncodeToString(fp[:6])

	privDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	// Derived, not stored: the same key file always gives the same service
	// key, so the one printed at start-up keeps working across restarts.
	mac := hmac.New(sha256.New, privDER)
	mac.Write([]byte("honeydo-realtime dev service key v1"))
	serviceKey := ServiceKeyPrefix + "dev_" + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))

	return &DevKey{priv: priv, path: path, jwk: jwk, publicPEM: publicPEM, serviceKey: serviceKey}, nil
}

// Path returns the file the key is kept in.
func (k *DevKey) Path() string { return k.path }

// KeyID returns the kid of the tokens this key signs: "dev-" followed by a
// short fingerprint of the public key.
func (k *DevKey) KeyID() string { return k.jwk.KeyID }

// PublicKeyPEM returns the public key as PEM ("PUBLIC KEY").
func (k *DevKey) PublicKeyPEM() string { return k.publicPEM }

// ServiceKey returns the dev service key, derived from the private key with
// HMAC-SHA256 so it is stable across restarts. A verifier with
// [Config.Dev] set accepts it as service [DevServiceName].
func (k *DevKey) ServiceKey() string { return k.serviceKey }

// MintOptions describes a dev token.
type MintOptions struct {
	// UserID is the token's sub. Required. Readable ids ("alice") are fine.
	UserID string
	// HouseholdID becomes the active organization (v2 o.id). Default: none,
	// and the verifier falls back to [Config.DefaultHousehold].
	HouseholdID string
	// SessionID is the token's sid. Default: a fresh "sess_dev_…" id.
	SessionID string
	// TTL is the token's lifetime. Default [DefaultDevTokenTTL].
	TTL time.Duration
	// ExtraRooms are rooms joined beyond the user's and household's (e.g.
	// "room:bench"). Only a dev verifier honours them.
	ExtraRooms []string
	// AuthorizedParty is the token's azp. Default: none, which a verifier
	// with [Config.AuthorizedParties] rejects.
	AuthorizedParty string
	// Now is the issue time. Default: the current time.
	Now time.Time
}

// Mint signs a Clerk-shaped v2 session token (RS256, kid [DevKey.KeyID],
// iss [DevIssuer]) and returns it with its expiry.
func (k *DevKey) Mint(opts MintOptions) (token string, expiry time.Time, err error) {
	if opts.UserID == "" || strings.ContainsFunc(opts.UserID, isSpaceOrControl) {
		return "", time.Time{}, errors.New("auth: mint: UserID must be non-empty and without spaces")
	}
	for _, r := range opts.ExtraRooms {
		if r == "" || strings.ContainsFunc(r, isSpaceOrControl) {
			return "", time.Time{}, fmt.Errorf("auth: mint: bad extra room %q", r)
		}
	}
	if opts.SessionID == "" {
		opts.SessionID = "sess_dev_" + strings.ToLower(base64.RawURLEncoding.EncodeToString(randomBytes(12)))
	}
	if opts.TTL <= 0 {
		opts.TTL = DefaultDevTokenTTL
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	now = now.Truncate(time.Second)
	expiry = now.Add(opts.TTL)

	claims := map[string]any{
		"iss": DevIssuer,
		"sub": opts.UserID,
		"sid": opts.SessionID,
		"iat": now.Unix(),
		// Clerk back-dates nbf a little to absorb clock skew; so do we.
		"nbf": now.Add(-10 * time.Second).Unix(),
		"exp": expiry.Unix(),
		"jti": hex.EncodeToString(randomBytes(10)),
		"v":   2,
		"sts": "active",
	}
	if opts.HouseholdID != "" {
		claims["o"] = map[string]any{"id": opts.HouseholdID}
	}
	if opts.AuthorizedParty != "" {
		claims["azp"] = opts.AuthorizedParty
	}
	if len(opts.ExtraRooms) > 0 {
		claims["rtd_rooms"] = opts.ExtraRooms
	}

	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: k.priv, KeyID: k.KeyID()}},
		(&jose.SignerOptions{}).WithType("JWT"),
	)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("auth: mint: %w", err)
	}
	token, err = josejwt.Signed(signer).Claims(claims).CompactSerialize()
	if err != nil {
		return "", time.Time{}, fmt.Errorf("auth: mint: %w", err)
	}
	return token, expiry, nil
}

func isSpaceOrControl(r rune) bool { return r <= ' ' || r == 0x7f }
