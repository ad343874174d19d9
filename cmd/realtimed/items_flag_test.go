package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"strings"
	"testing"

	"github.com/honeydo/realtime/internal/shopping"
)

// TestMaxItemsPerHouseholdFlag checks the cap's default, its environment
// variable, its --help entry and that a cap of 0 is refused at start-up.
// The cap itself is tested through the RPC in internal/shopping and
// against this binary in web/src/demo/shopping.
func TestMaxItemsPerHouseholdFlag(t *testing.T) {
	o, err := parseFlags(nil, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.maxItemsPerHousehold != shopping.DefaultMaxItemsPerHousehold {
		t.Errorf("default = %d, want %d", o.maxItemsPerHousehold, shopping.DefaultMaxItemsPerHousehold)
	}
	t.Setenv("REALTIMED_MAX_ITEMS_PER_HOUSEHOLD", "42")
	if o, err = parseFlags(nil, &bytes.Buffer{}); err != nil || o.maxItemsPerHousehold != 42 {
		t.Errorf("from the environment: %v, %v; want 42", o, err)
	}
	if o, err = parseFlags([]string{"--max-items-per-household", "-1"}, &bytes.Buffer{}); err != nil || o.maxItemsPerHousehold != -1 {
		t.Errorf("flag beats environment: %v, %v; want -1", o, err)
	}

	var help bytes.Buffer
	if _, err := parseFlags([]string{"--help"}, &help); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	for _, want := range []string{"--max-items-per-household", "FAILED_PRECONDITION", "default: 5000", "env: REALTIMED_MAX_ITEMS_PER_HOUSEHOLD"} {
		if !strings.Contains(help.String(), want) {
			t.Errorf("--help does not mention %q", want)
		}
	}

	for _, bad := range []int{0, -2} {
		o.maxItemsPerHousehold = bad
		err := run(context.Background(), o, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), "--max-items-per-household must be positive, or -1 for no cap") {
			t.Errorf("run with %d: %v, want a refusal", bad, err)
		}
	}
}
