package main

import (
	"context"
	"fmt"
	"time"

	"github.com/honeydo/realtime/internal/auth"
	"github.com/honeydo/realtime/internal/config"
)

const tokenSynopsis = `realtimectl token — mint a dev session token (dev mode only).

Usage:
  realtimectl token --user U [--household H] [--ttl 60s] [--rooms r1,r2] [--data-dir .data]
  realtimectl token --service [--data-dir .data]

Signs a Clerk-shaped session token with the dev key that realtimed --dev
keeps in its data directory, and prints just the token, so that
  TOKEN=$(realtimectl token --user alice --household home)
works. Only a server started with --dev accepts it.

With --service it prints the dev service key instead (the credential
Publish needs, also printed by realtimed --dev at start-up), so that
  SERVICE_KEY=$(realtimectl token --service)
works.
`

func runToken(_ context.Context, std *stdio, args []string) error {
	var (
		user, household, dataDir string
		ttl                      time.Duration
		rooms                    config.StringList
		service                  bool
	)
	fs := newFlagSet(std, "token", tokenSynopsis)
	fs.StringVar(&user, "user", "", "the token's `user` id (sub), e.g. alice; required")
	fs.StringVar(&household, "household", "", "the `household` (active organization); default: the server's default household")
	fs.DurationVar(&ttl, "ttl", auth.DefaultDevTokenTTL, "the token's lifetime, at most 24h")
	fs.Var(&rooms, "rooms", "comma-separated extra `rooms` to join, e.g. room:bench")
	registerDataDir(fs, &dataDir)
	fs.BoolVar(&service, "service", false, "print the dev service key (for Publish) instead of a session token")
	if err := fs.parse(args); err != nil {
		return helpOK(err)
	}
	if service {
		if user != "" || household != "" || len(rooms) > 0 {
			return usagef("token", "--service prints the dev service key; it takes no --user, --household or --rooms")
		}
		key, err := loadDevKey(dataDir)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(std.stdout, key.ServiceKey())
		return err
	}
	if user == "" {
		return usagef("token", "--user is required")
	}
	if ttl <= 0 || ttl > 24*time.Hour {
		return usagef("token", "--ttl must be between 1s and 24h, not %v", ttl)
	}
	key, err := loadDevKey(dataDir)
	if err != nil {
		return err
	}
	tok, _, err := key.Mint(auth.MintOptions{UserID: user, HouseholdID: household, TTL: ttl, ExtraRooms: rooms})
	if err != nil {
		return usagef("token", "%v", err)
	}
	_, err = fmt.Fprintln(std.stdout, tok)
	return err
}
