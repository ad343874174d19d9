package realtime

import (
	"time"

	"github.com/honeydo/realtime/internal/auth"
)

// DevKey is a local signing key that stands in for Clerk in tests and
// local development ([Options.Dev]): it mints session tokens for any user
// and household, so never use it in production. It is the key of
// `realtimed --dev`, kept in a file of its directory, so realtimectl and
// realtimed's /dev/token mint tokens the service accepts.
type DevKey struct{ key *auth.DevKey }

// LoadDevKey loads the dev key from dir, or creates one there (the
// directory is created 0700 if missing).
func LoadDevKey(dir string) (*DevKey, error) {
	k, err := auth.LoadOrCreateDevKey(dir)
	if err != nil {
		return nil, err
	}
	return &DevKey{key: k}, nil
}

// Token mints a session token for userID in householdID, valid for ttl
// (zero means 60s, as Clerk's tokens).
func (k *DevKey) Token(userID, householdID string, ttl time.Duration) (string, error) {
	tok, _, err := k.key.Mint(auth.MintOptions{UserID: userID, HouseholdID: householdID, TTL: ttl})
	return tok, err
}

// ServiceKey is the key of service "dev", which may call Publish.
func (k *DevKey) ServiceKey() string { return k.key.ServiceKey() }
