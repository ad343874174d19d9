// Package poll is for tests only: wait for a condition by polling it
// rather than sleeping. It imports nothing of ours, so every package's
// tests can use it, including those that testkit itself depends on.
package poll

import (
	"testing"
	"time"
)

// Eventually calls fn every interval until it returns nil, and fails the
// test with fn's last error once timeout has passed. fn runs at least once,
// on the calling goroutine.
func Eventually(t testing.TB, timeout, interval time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", timeout, err)
		}
		time.Sleep(interval)
	}
}
