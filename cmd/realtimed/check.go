package main

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
)

// checked holds what checkOptions derived from the flags.
type checked struct {
	serviceKeys map[string]string
	exempt      []netip.Prefix
	// jwtKey is --clerk-jwt-key, read from its file when given as @file.
	jwtKey string
}

// checkOptions refuses contradictory or out-of-range flags before
// anything is opened, and parses the ones that need it.
func checkOptions(o *options) (*checked, error) {
	if o.benchAPI && !o.dev {
		return nil, errors.New("--bench-api needs --dev: the bench API floods every stream and is never served in production")
	}
	if o.maxItemsPerHousehold == 0 || o.maxItemsPerHousehold < -1 {
		return nil, fmt.Errorf("--max-items-per-household must be positive, or -1 for no cap; got %d", o.maxItemsPerHousehold)
	}
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return nil, errors.New("--tls-cert and --tls-key go together: give both or neither")
	}
	if o.dev && !o.devAllowRemote && !isLoopback(o.addr) {
		return nil, fmt.Errorf("--dev refuses to listen on %s: anyone who reaches it could mint tokens; use a loopback address or add --dev-allow-remote", o.addr)
	}
	if err := checkModules(o.modules); err != nil {
		return nil, err
	}
	serviceKeys, err := parseServiceKeys(o.serviceKeys)
	if err != nil {
		return nil, err
	}
	exempt, err := parsePrefixes(o.connLimitExempt)
	if err != nil {
		return nil, fmt.Errorf("--conn-limit-exempt: %w", err)
	}
	if o.maxHealthWatches == 0 || o.healthWatchLifetime == 0 {
		return nil, errors.New("--max-health-watches and --health-watch-lifetime must not be 0 (use -1 for no limit)")
	}
	if o.maxConcurrentStreams < 1 {
		return nil, errors.New("--max-concurrent-streams must be at least 1")
	}
	jwtKey := o.clerkJWTKey
	if strings.HasPrefix(jwtKey, "@") {
		b, err := os.ReadFile(jwtKey[1:])
		if err != nil {
			return nil, fmt.Errorf("--clerk-jwt-key: %w", err)
		}
		jwtKey = string(b)
	}
	if !o.dev && o.clerkSecretKey == "" && jwtKey == "" {
		return nil, errors.New("no way to verify tokens: set CLERK_SECRET_KEY or CLERK_JWT_KEY (or run with --dev for local development)")
	}
	return &checked{serviceKeys: serviceKeys, exempt: exempt, jwtKey: jwtKey}, nil
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func parseServiceKeys(list []string) (map[string]string, error) {
	keys := make(map[string]string, len(list))
	for _, kv := range list {
		name, key, ok := strings.Cut(kv, "=")
		if !ok || name == "" || key == "" {
			return nil, fmt.Errorf("--service-keys: %q is not name=key", redact(kv))
		}
		keys[name] = key
	}
	return keys, nil
}

// parsePrefixes reads CIDR prefixes; a bare address stands for itself. The
// result is never nil, so that an empty list exempts no one.
func parsePrefixes(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		if a, err := netip.ParseAddr(s); err == nil {
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("%q is neither an address nor a CIDR prefix", s)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// redact keeps enough of a secret to recognize it in a log.
func redact(s string) string {
	if s == "" {
		return ""
	}
	if len(s) <= 8 {
		return "***"
	}
	return s[:4] + "…(" + fmt.Sprint(len(s)) + " chars)"
}
