package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"sort"
	"strings"
)

// ServiceKeyPrefix starts every service key. It lets the verifier tell a
// service key from a JWT (which starts with "eyJ") by looking, and makes a
// leaked key easy to recognise in logs and secret scanners.
const ServiceKeyPrefix = "hds_"

// minServiceKeyBody is the least number of characters after the prefix:
// 32 base64 characters carry 192 bits, out of reach of guessing.
const minServiceKeyBody = 32

// DevServiceName is the service name of [DevKey.ServiceKey].
const DevServiceName = "dev"

// serviceKey is a configured key, kept only as its hash.
type serviceKey struct {
	name   string
	digest [sha256.Size]byte
}

// NewServiceKey returns a fresh random service key: [ServiceKeyPrefix]
// followed by 43 URL-safe base64 characters (256 bits).
func NewServiceKey() string {
	return ServiceKeyPrefix + base64.RawURLEncoding.EncodeToString(randomBytes(32))
}

// validServiceKey reports whether s has the service key format.
func validServiceKey(s string) bool {
	body, ok := strings.CutPrefix(s, ServiceKeyPrefix)
	if !ok || len(body) < minServiceKeyBody {
		return false
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// newServiceKeys validates the configured keys and hashes them. The dev key,
// if any, adds service "dev".
func newServiceKeys(cfg map[string]string, dev *DevKey) ([]serviceKey, error) {
	names := make([]string, 0, len(cfg))
	for name := range cfg {
		names = append(names, name)
	}
	sort.Strings(names) // deterministic error messages
	var keys []serviceKey
	seen := make(map[[sha256.Size]byte]string)
	add := func(name, key string) error {
		if name == "" {
			return fmt.Errorf("auth: ServiceKeys: empty service name")
		}
		if !validServiceKey(key) {
			return fmt.Errorf("auth: ServiceKeys[%q]: a service key is %q followed by at least %d characters of [A-Za-z0-9_-]", name, ServiceKeyPrefix, minServiceKeyBody)
		}
		d := sha256.Sum256([]byte(key))
		if other, dup := seen[d]; dup {
			// One key for two names would make the principal ambiguous.
			return fmt.Errorf("auth: ServiceKeys: %q and %q have the same key", other, name)
		}
		seen[d] = name
		keys = append(keys, serviceKey{name: name, digest: d})
		return nil
	}
	for _, name := range names {
		if err := add(name, cfg[name]); err != nil {
			return nil, err
		}
	}
	if dev != nil {
		if err := add(DevServiceName, dev.ServiceKey()); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

// verifyServiceKey finds the service a key belongs to. Both sides are
// hashed first, so the comparison is over equal-length digests; every
// configured key is compared, without an early exit, so the time taken does
// not depend on which key (if any) matched.
func (v *Verifier) verifyServiceKey(key string) (*Principal, error) {
	if !validServiceKey(key) {
		return nil, newError(ErrMalformedToken, "not a valid service key", nil)
	}
	d := sha256.Sum256([]byte(key))
	match := -1
	for i := range v.services {
		if subtle.ConstantTimeCompare(d[:], v.services[i].digest[:]) == 1 {
			match = i
		}
	}
	if match < 0 {
		return nil, newError(ErrUnknownServiceKey, "", nil)
	}
	return &Principal{UserID: v.services[match].name, Service: true}, nil
}

// RequireCaller returns the verified caller, person or service. It is the
// one way handlers ask for it: without a principal in ctx (a handler
// mounted without the auth interceptor) it fails with Unauthenticated
// wrapping [ErrMissingToken], the same error for every handler.
func RequireCaller(ctx context.Context) (*Principal, error) {
	p, ok := FromContext(ctx)
	if !ok {
		return nil, errNoCaller()
	}
	return p, nil
}

// errNoCaller is the error of a handler that finds no verified caller.
func errNoCaller() error {
	return ConnectError(newError(ErrMissingToken, "no verified caller", nil))
}

// RequireService returns the caller if it is a service, for handlers such
// as Publish. It returns a [*connect.Error]: Unauthenticated when ctx holds
// no principal (the interceptor did not run), PermissionDenied wrapping
// [ErrNotService] for a user session.
func RequireService(ctx context.Context) (*Principal, error) {
	p, err := RequireCaller(ctx)
	if err != nil {
		return nil, err
	}
	if !p.Service {
		return nil, ConnectError(newError(ErrNotService, "", nil))
	}
	return p, nil
}

// RequireUser returns the caller if it is a person, for handlers that act
// for one (Subscribe: a stream carries a user's and a household's events,
// and a service has neither). It returns a [*connect.Error]:
// Unauthenticated when ctx holds no principal, PermissionDenied wrapping
// [ErrServiceNotAllowed] for a service credential.
func RequireUser(ctx context.Context) (*Principal, error) {
	p, err := RequireCaller(ctx)
	if err != nil {
		return nil, err
	}
	if p.Service {
		return nil, ConnectError(newError(ErrServiceNotAllowed, "services send events with Publish", nil))
	}
	return p, nil
}

// randomBytes returns n random bytes. crypto/rand.Read never fails (since
// Go 1.24 it crashes the program instead), so there is no error to return.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}
