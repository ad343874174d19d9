package main

import (
	"io"
	"net/netip"
	"slices"
	"testing"
)

// TestConnLimitFlags: the connection budget flags and their environment
// variables reach the options, and --conn-limit-exempt parses into
// prefixes, an empty list meaning no exemption.
func TestConnLimitFlags(t *testing.T) {
	o, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	exempt, err := parsePrefixes(o.connLimitExempt)
	if err != nil {
		t.Fatal(err)
	}
	if want := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}; !slices.Equal(exempt, want) {
		t.Errorf("default exempt = %v, want %v", exempt, want)
	}
	if o.maxConnsPerAddr != 256 || o.maxUnauthConnsPerAddr != 64 || o.maxConcurrentStreams != 100 || o.requestBodyTimeout.String() != "30s" {
		t.Errorf("defaults: %+v", o)
	}

	t.Setenv("REALTIMED_MAX_UNAUTHENTICATED_CONNS_PER_ADDR", "8")
	o, err = parseFlags([]string{"--conn-limit-exempt", "10.0.0.0/8, 192.168.1.7,2001:db8::1/48", "--max-conns-per-addr", "-1"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	exempt, err = parsePrefixes(o.connLimitExempt)
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.7/32"), netip.MustParsePrefix("2001:db8::/48")}
	if !slices.Equal(exempt, want) || o.maxConnsPerAddr != -1 || o.maxUnauthConnsPerAddr != 8 {
		t.Errorf("got exempt %v, per addr %d, unauthenticated %d", exempt, o.maxConnsPerAddr, o.maxUnauthConnsPerAddr)
	}

	o, err = parseFlags([]string{"--conn-limit-exempt", ""}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if exempt, err := parsePrefixes(o.connLimitExempt); err != nil || exempt == nil || len(exempt) != 0 {
		t.Errorf("empty --conn-limit-exempt = %#v, %v; want an empty, non-nil list", exempt, err)
	}
	if _, err := parsePrefixes([]string{"10.0.0.0/33"}); err == nil {
		t.Error("a bad prefix was accepted")
	}
}

// TestHealthWatchFlags: the health Watch limits have their documented
// defaults and environment variables.
func TestHealthWatchFlags(t *testing.T) {
	o, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.maxHealthWatches != 64 || o.healthWatchLifetime.String() != "5m0s" {
		t.Errorf("defaults: %d watches, lifetime %v", o.maxHealthWatches, o.healthWatchLifetime)
	}
	t.Setenv("REALTIMED_MAX_HEALTH_WATCHES", "-1")
	o, err = parseFlags([]string{"--health-watch-lifetime", "30s"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.maxHealthWatches != -1 || o.healthWatchLifetime.String() != "30s" {
		t.Errorf("got %d watches, lifetime %v", o.maxHealthWatches, o.healthWatchLifetime)
	}
}
