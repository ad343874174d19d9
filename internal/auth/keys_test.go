package auth

import (
	"context"
	"crypto/rsa"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
)

// newJWKSVerifier returns a verifier that fetches keys from the stand-in,
// with a settable clock.
func newJWKSVerifier(t *testing.T, clerk *clerkStandIn, clock *fakeClock, mutate func(*Config)) *Verifier {
	t.Helper()
	cfg := Config{SecretKey: testSecret, APIURL: clerk.APIURL(), Now: clock.Now, Logger: slog.New(slog.DiscardHandler)}
	if mutate != nil {
		mutate(&cfg)
	}
	v, err := NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func mustVerify(t *testing.T, v *Verifier, token string) *Principal {
	t.Helper()
	p, err := v.Verify(context.Background(), token)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return p
}

func wantFetches(t *testing.T, clerk *clerkStandIn, want int64) {
	t.Helper()
	if got := clerk.fetches.Load(); got != want {
		t.Fatalf("JWKS fetched %d times, want %d", got, want)
	}
}

func TestJWKSIsCachedByKid(t *testing.T) {
	t.Parallel()
	clerk := newClerkStandIn(t, map[string]*rsa.PrivateKey{"ins_a": clerkKey(), "ins_b": rotatedKey()})
	clock := newFakeClock(testNow)
	v := newJWKSVerifier(t, clerk, clock, nil)

	wantFetches(t, clerk, 0) // NewVerifier stays off the network
	for range 5 {
		mustVerify(t, v, signToken(t, clerkKey(), "ins_a", clerkClaims(clock.Now(), nil)))
		mustVerify(t, v, signToken(t, rotatedKey(), "ins_b", clerkClaims(clock.Now(), nil)))
		clock.Advance(time.Minute) // cached keys never expire on their own
	}
	wantFetches(t, clerk, 1)
}

func TestJWKSUnknownKidRefetchesAtMostOncePerInterval(t *testing.T) {
	t.Parallel()
	clerk := newClerkStandIn(t, map[string]*rsa.PrivateKey{"ins_a": clerkKey()})
	clock := newFakeClock(testNow)
	v := newJWKSVerifier(t, clerk, clock, func(c *Config) { c.JWKSRefetchInterval = 10 * time.Second })

	mustVerify(t, v, signToken(t, clerkKey(), "ins_a", clerkClaims(clock.Now(), nil)))
	wantFetches(t, clerk, 1)

	// Right after a fetch an unknown kid is refused without asking again,
	// however often it comes.
	unknown := func() error {
		_, err := v.Verify(context.Background(), signToken(t, otherKey(), "ins_random", clerkClaims(clock.Now(), nil)))
		return err
	}
	for range 10 {
		if err := unknown(); !errors.Is(err, ErrUnknownKey) || Code(err) != connect.CodeUnauthenticated {
			t.Fatalf("unknown kid: %v", err)
		}
	}
	wantFetches(t, clerk, 1)

	// Once the interval has passed, one unknown kid triggers one refetch.
	clock.Advance(10 * time.Second)
	for range 10 {
		if err := unknown(); !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("unknown kid: %v", err)
		}
	}
	wantFetches(t, clerk, 2)

	// Clerk rotates its key: the new kid is picked up on the next refetch.
	clerk.setKeys(map[string]*rsa.PrivateKey{"ins_a": clerkKey(), "ins_b": rotatedKey()})
	rotated := signToken(t, rotatedKey(), "ins_b", clerkClaims(clock.Now(), nil))
	if _, err := v.Verify(context.Background(), rotated); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("rotated kid within the interval: %v, want unknown key", err)
	}
	clock.Advance(10 * time.Second)
	rotated = signToken(t, rotatedKey(), "ins_b", clerkClaims(clock.Now(), nil))
	mustVerify(t, v, rotated)
	wantFetches(t, clerk, 3)
}

func TestJWKSDefaultRefetchInterval(t *testing.T) {
	t.Parallel()
	clerk := newClerkStandIn(t, map[string]*rsa.PrivateKey{"ins_a": clerkKey()})
	clock := newFakeClock(testNow)
	v := newJWKSVerifier(t, clerk, clock, nil)
	unknown := func() {
		_, _ = v.Verify(context.Background(), signToken(t, otherKey(), "ins_x", clerkClaims(clock.Now(), nil)))
	}
	unknown()
	wantFetches(t, clerk, 1)
	clock.Advance(DefaultJWKSRefetchInterval - time.Millisecond)
	unknown()
	wantFetches(t, clerk, 1)
	clock.Advance(time.Millisecond)
	unknown()
	wantFetches(t, clerk, 2)
}

func TestJWKSConcurrentMissesShareOneFetch(t *testing.T) {
	t.Parallel()
	clerk := newClerkStandIn(t, map[string]*rsa.PrivateKey{"ins_a": clerkKey()})
	clerk.delay = 50 * time.Millisecond // keep the fetch in flight while the others arrive
	clock := newFakeClock(testNow)
	v := newJWKSVerifier(t, clerk, clock, nil)
	good := signToken(t, clerkKey(), "ins_a", clerkClaims(clock.Now(), nil))
	bad := signToken(t, otherKey(), "ins_unknown", clerkClaims(clock.Now(), nil))

	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 64 {
		wg.Go(func() {
			tok := good
			if i%2 == 1 {
				tok = bad
			}
			_, err := v.Verify(context.Background(), tok)
			if tok == good && err != nil {
				errs <- err
			}
			if tok == bad && !errors.Is(err, ErrUnknownKey) {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	wantFetches(t, clerk, 1)
}

func TestJWKSUnreachable(t *testing.T) {
	t.Parallel()
	clock := newFakeClock(testNow)

	t.Run("server down", func(t *testing.T) {
		t.Parallel()
		clerk := newClerkStandIn(t, nil)
		clerk.Close()
		v := newJWKSVerifier(t, clerk, clock, nil)
		_, err := v.Verify(context.Background(), signToken(t, clerkKey(), "ins_a", clerkClaims(clock.Now(), nil)))
		assertUnavailable(t, err)
		if strings.Contains(err.Error(), "127.0.0.1") {
			t.Errorf("message names the internal host: %q", err)
		}
	})
	t.Run("wrong secret key", func(t *testing.T) {
		t.Parallel()
		clerk := newClerkStandIn(t, map[string]*rsa.PrivateKey{"ins_a": clerkKey()})
		v := newJWKSVerifier(t, clerk, clock, func(c *Config) { c.SecretKey = "sk_test_wrong" })
		_, err := v.Verify(context.Background(), signToken(t, clerkKey(), "ins_a", clerkClaims(clock.Now(), nil)))
		assertUnavailable(t, err)
	})
	t.Run("outage after keys were cached", func(t *testing.T) {
		t.Parallel()
		clerk := newClerkStandIn(t, map[string]*rsa.PrivateKey{"ins_a": clerkKey()})
		clock := newFakeClock(testNow)
		v := newJWKSVerifier(t, clerk, clock, nil)
		mustVerify(t, v, signToken(t, clerkKey(), "ins_a", clerkClaims(clock.Now(), nil)))

		clerk.setDown(true)
		clock.Advance(time.Minute)
		_, err := v.Verify(context.Background(), signToken(t, rotatedKey(), "ins_b", clerkClaims(clock.Now(), nil)))
		assertUnavailable(t, err)
		wantFetches(t, clerk, 2)
		// The failure is remembered for the interval: no hammering.
		_, err = v.Verify(context.Background(), signToken(t, rotatedKey(), "ins_b", clerkClaims(clock.Now(), nil)))
		assertUnavailable(t, err)
		wantFetches(t, clerk, 2)
		// Keys fetched before the outage keep working.
		mustVerify(t, v, signToken(t, clerkKey(), "ins_a", clerkClaims(clock.Now(), nil)))

		// Recovery: the next refetch after the interval succeeds.
		clerk.setDown(false)
		clerk.setKeys(map[string]*rsa.PrivateKey{"ins_a": clerkKey(), "ins_b": rotatedKey()})
		clock.Advance(DefaultJWKSRefetchInterval)
		mustVerify(t, v, signToken(t, rotatedKey(), "ins_b", clerkClaims(clock.Now(), nil)))
		wantFetches(t, clerk, 3)
	})
}

func assertUnavailable(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ErrKeysUnavailable) || Code(err) != connect.CodeUnavailable || Reason(err) != "keys_unavailable" {
		t.Fatalf("err = %v (code %v), want keys unavailable", err, Code(err))
	}
	var e *Error
	if !errors.As(err, &e) || e.Cause == nil {
		t.Errorf("no cause for the logs in %#v", err)
	}
}

func TestJWKSTokenWithoutKid(t *testing.T) {
	t.Parallel()
	clerk := newClerkStandIn(t, map[string]*rsa.PrivateKey{"ins_a": clerkKey()})
	v := newJWKSVerifier(t, clerk, newFakeClock(testNow), nil)
	_, err := v.Verify(context.Background(), signToken(t, clerkKey(), "", clerkClaims(testNow, nil)))
	if !errors.Is(err, ErrMalformedToken) {
		t.Fatalf("err = %v, want malformed", err)
	}
	wantFetches(t, clerk, 0)
}

func TestJWKSWaiterGivesUpWithItsContext(t *testing.T) {
	t.Parallel()
	clerk := newClerkStandIn(t, map[string]*rsa.PrivateKey{"ins_a": clerkKey()})
	clerk.delay = 200 * time.Millisecond
	v := newJWKSVerifier(t, clerk, newFakeClock(testNow), nil)
	tok := signToken(t, clerkKey(), "ins_a", clerkClaims(testNow, nil))

	first := make(chan error, 1)
	go func() {
		_, err := v.Verify(context.Background(), tok)
		first <- err
	}()
	// Wait for the first call's fetch to be in flight, then arrive with a
	// context that ends before it finishes.
	for clerk.fetches.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := v.Verify(ctx, tok); !errors.Is(err, ErrKeysUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiter: %v", err)
	}
	// The fetch itself is not cancelled by an impatient waiter.
	if err := <-first; err != nil {
		t.Fatalf("first caller: %v", err)
	}
	wantFetches(t, clerk, 1)
}
