package auth

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/clerk/clerk-sdk-go/v2"
	"github.com/clerk/clerk-sdk-go/v2/jwks"
)

// keySource finds the public key for a token's kid.
type keySource interface {
	key(ctx context.Context, kid string) (*clerk.JSONWebKey, error)
}

// staticKey is the networkless source: one PEM key (CLERK_JWT_KEY). Clerk
// signs every session token of an instance with it, so the kid is not
// consulted.
type staticKey struct{ jwk *clerk.JSONWebKey }

func (s staticKey) key(context.Context, string) (*clerk.JSONWebKey, error) { return s.jwk, nil }

// jwksFetchTimeout bounds one JWKS request, whatever the context of the
// request that triggered it (see jwksCache.fetch).
const jwksFetchTimeout = 10 * time.Second

// jwksCache holds Clerk's JWKS, keyed by kid. A kid it does not know
// triggers a refetch, but at most one per interval: otherwise anybody could
// make us hammer Clerk by sending tokens with random kids. Callers that miss
// while a fetch is in flight wait for it instead of starting their own.
type jwksCache struct {
	client   *jwks.Client
	interval time.Duration
	now      func() time.Time
	logger   *slog.Logger

	mu        sync.Mutex
	keys      map[string]*clerk.JSONWebKey
	fetchedAt time.Time     // when the last fetch finished; zero before the first
	fetchErr  error         // the last fetch's error; old keys stay usable
	inflight  chan struct{} // closed when the running fetch finishes; nil if none
}

func newJWKSCache(client *jwks.Client, interval time.Duration, now func() time.Time, logger *slog.Logger) *jwksCache {
	return &jwksCache{client: client, interval: interval, now: now, logger: logger}
}

func (c *jwksCache) key(ctx context.Context, kid string) (*clerk.JSONWebKey, error) {
	if kid == "" {
		// Clerk always sets kid; without it we could only guess a key.
		return nil, newError(ErrMalformedToken, "token header has no key id (kid)", nil)
	}
	// fetched is set once this call has seen a fetch finish (its own or
	// one it waited for); from then on the answer is final, so a call never
	// fetches twice.
	fetched := false
	for {
		c.mu.Lock()
		if k := c.keys[kid]; k != nil {
			c.mu.Unlock()
			return k, nil
		}
		if ch := c.inflight; ch != nil {
			c.mu.Unlock()
			select {
			case <-ch:
				fetched = true
				continue
			case <-ctx.Done():
				return nil, newError(ErrKeysUnavailable, "gave up waiting for the key set", ctx.Err())
			}
		}
		recent := !c.fetchedAt.IsZero() && c.now().Sub(c.fetchedAt) < c.interval
		if fetched || recent {
			err := c.fetchErr
			c.mu.Unlock()
			if err != nil {
				return nil, newError(ErrKeysUnavailable, "cannot fetch Clerk's key set", err)
			}
			return nil, newError(ErrUnknownKey, "no key with the token's kid in Clerk's key set", nil)
		}
		ch := make(chan struct{})
		c.inflight = ch
		c.mu.Unlock()

		keys, err := c.fetch(ctx)

		c.mu.Lock()
		c.fetchedAt = c.now()
		c.fetchErr = err
		if err == nil {
			c.keys = keys
		}
		c.inflight = nil
		close(ch)
		c.mu.Unlock()
		fetched = true
	}
}

// fetch asks Clerk for the key set. It does not inherit ctx's cancellation:
// other callers may be waiting on this fetch, and one impatient client must
// not fail them all.
func (c *jwksCache) fetch(ctx context.Context) (map[string]*clerk.JSONWebKey, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), jwksFetchTimeout)
	defer cancel()
	set, err := c.client.Get(ctx, &jwks.GetParams{})
	if err != nil {
		c.logger.Warn("auth: fetching Clerk's JWKS failed", "err", err)
		return nil, err
	}
	keys := make(map[string]*clerk.JSONWebKey, len(set.Keys))
	for _, k := range set.Keys {
		if k == nil || k.KeyID == "" || k.Key == nil || (k.Use != "" && k.Use != "sig") {
			continue
		}
		keys[k.KeyID] = k
	}
	if len(keys) == 0 {
		err := fmt.Errorf("Clerk's JWKS has no signing keys")
		c.logger.Warn("auth: " + err.Error())
		return nil, err
	}
	c.logger.Debug("auth: fetched Clerk's JWKS", "keys", len(keys))
	return keys, nil
}
