package main

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect"

	"github.com/honeydo/realtime/client"
	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	shoppingv1 "github.com/honeydo/realtime/gen/honeydo/shopping/v1"
	"github.com/honeydo/realtime/gen/honeydo/shopping/v1/shoppingv1connect"
	"github.com/honeydo/realtime/internal/testkit"
)

// TestModulesFlag: no module in production unless --modules names one,
// the shopping module by default with --dev, an empty value for none, the
// environment variable, a refusal of unknown names, and --help.
func TestModulesFlag(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  string
		args []string
		want []string
	}{
		{"production default", "", nil, nil},
		{"dev default", "", []string{"--dev"}, []string{"shopping"}},
		{"dev without modules", "", []string{"--dev", "--modules", ""}, nil},
		{"production with shopping", "", []string{"--modules", "shopping"}, []string{"shopping"}},
		{"from the environment", "shopping", nil, []string{"shopping"}},
		{"dev, none from the environment", " ", []string{"--dev"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != "" {
				t.Setenv("REALTIMED_MODULES", tc.env)
			}
			o, err := parseFlags(tc.args, &bytes.Buffer{})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(o.modules, tc.want) {
				t.Errorf("modules = %q, want %q", o.modules, tc.want)
			}
		})
	}
	for _, bad := range [][]string{{"--modules", "shopping,chores"}, {"--modules", "shopping,shopping"}} {
		if _, err := parseFlags(bad, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "--modules") {
			t.Errorf("parseFlags(%q) = %v, want a --modules error", bad, err)
		}
	}
	var help bytes.Buffer
	if _, err := parseFlags([]string{"--help"}, &help); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	for _, want := range []string{"--modules", "available: shopping", "env: REALTIMED_MODULES", "not even created"} {
		if !strings.Contains(help.String(), want) {
			t.Errorf("--help does not mention %q", want)
		}
	}
}

// jwtKeyPEM returns key's public half as the PEM that --clerk-jwt-key
// takes.
func jwtKeyPEM(t *testing.T, key *rsa.PrivateKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// TestProductionWithoutModules runs the binary in production mode with no
// --modules: it serves RealtimeService to a Clerk token, serves no
// ShoppingService, and neither creates --data-dir nor opens a database in
// it. With --modules shopping the same binary serves the list and keeps
// its database in --data-dir.
func TestProductionWithoutModules(t *testing.T) {
	t.Parallel()
	key := rsaKey(t)
	env := []string{"CLERK_JWT_KEY=" + jwtKeyPEM(t, key)}
	token := clerkToken(t, key, "ins_key1", e2eIssuer, "user_2alice", "org_house1")
	ctx := context.Background()

	dataDir := filepath.Join(t.TempDir(), "never-created")
	p := startBinary(t, env, "--data-dir", dataDir)
	if _, err := p.realtimeClient(t, token).WhoAmI(ctx, connect.NewRequest(&realtimev1.WhoAmIRequest{})); err != nil {
		t.Fatalf("WhoAmI: %v", err)
	}
	if _, err := openLiveStream(t, p.realtimeClient(t, token)); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	shop := shoppingv1connect.NewShoppingServiceClient(testkit.HTTPClient(t, false), p.URL, client.BearerToken(token))
	if _, err := shop.ListItems(ctx, connect.NewRequest(&shoppingv1.ListItemsRequest{})); connect.CodeOf(err) != connect.CodeUnimplemented {
		t.Errorf("ListItems without the module: %v, want Unimplemented", err)
	}
	if _, err := os.Stat(dataDir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("--data-dir %s: %v, want it never created", dataDir, err)
	}

	dataDir = filepath.Join(t.TempDir(), "shop-data")
	p = startBinary(t, env, "--data-dir", dataDir, "--modules", "shopping")
	shop = shoppingv1connect.NewShoppingServiceClient(testkit.HTTPClient(t, false), p.URL, client.BearerToken(token))
	if _, err := shop.AddItem(ctx, connect.NewRequest(&shoppingv1.AddItemRequest{Name: "Milk"})); err != nil {
		t.Fatalf("AddItem with --modules shopping: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "shopping.db")); err != nil {
		t.Errorf("the shopping database: %v", err)
	}
}
