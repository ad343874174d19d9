package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"connectrpc.com/connect"
)

func TestNewServiceKey(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 100 {
		k := NewServiceKey()
		if !validServiceKey(k) || len(k) != len(ServiceKeyPrefix)+43 {
			t.Fatalf("NewServiceKey() = %q: not a valid key", k)
		}
		if seen[k] {
			t.Fatal("NewServiceKey repeated itself")
		}
		seen[k] = true
	}
}

func TestValidServiceKey(t *testing.T) {
	t.Parallel()
	body32 := "abcdefghijklmnopqrstuvwxyzABCD-_"
	tests := []struct {
		key  string
		want bool
	}{
		{ServiceKeyPrefix + body32, true},
		{ServiceKeyPrefix + body32[:31], false},
		{"HDS_" + body32, false},
		{ServiceKeyPrefix + body32 + "=", false},
		{ServiceKeyPrefix + body32 + " ", false},
		{ServiceKeyPrefix + body32 + "é", false},
		{body32 + body32, false},
		{"", false},
	}
	for _, tt := range tests {
		if got := validServiceKey(tt.key); got != tt.want {
			t.Errorf("validServiceKey(%q) = %v, want %v", tt.key, got, tt.want)
		}
	}
}

func TestServiceKeysIdentifyTheirService(t *testing.T) {
	t.Parallel()
	keys := map[string]string{"shopping": NewServiceKey(), "billing": NewServiceKey(), "chores": NewServiceKey()}
	v := newPEMVerifier(t, Config{ServiceKeys: keys})
	for name, key := range keys {
		p, err := v.Verify(context.Background(), key)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if p.UserID != name || !p.Service || p.HouseholdID != "" || p.SessionID != "" || !p.Expiry.IsZero() {
			t.Errorf("%s: principal %+v", name, *p)
		}
	}
	// Surrounding spaces are the header parser's business, but Verify
	// tolerates them too.
	if p, err := v.Verify(context.Background(), " "+keys["billing"]+"\t"); err != nil || p.UserID != "billing" {
		t.Errorf("padded key: %v, %v", p, err)
	}
}

func TestRequireService(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		ctx      context.Context
		wantCode connect.Code // 0: allowed
		wantErr  error
	}{
		{"service", WithPrincipal(context.Background(), &Principal{UserID: "shopping", Service: true}), 0, nil},
		{"user session", WithPrincipal(context.Background(), &Principal{UserID: "user_1", SessionID: "s", HouseholdID: "h"}), connect.CodePermissionDenied, ErrNotService},
		{"no principal", context.Background(), connect.CodeUnauthenticated, ErrMissingToken},
		{"nil principal", WithPrincipal(context.Background(), nil), connect.CodeUnauthenticated, ErrMissingToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := RequireService(tt.ctx)
			if tt.wantCode == 0 {
				if err != nil || p == nil || !p.Service {
					t.Fatalf("RequireService = %v, %v", p, err)
				}
				return
			}
			ce, ok := errors.AsType[*connect.Error](err)
			if !ok {
				t.Fatalf("err %T is not a *connect.Error", err)
			}
			if ce.Code() != tt.wantCode || !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v wrapping %v", err, tt.wantCode, tt.wantErr)
			}
		})
	}
	_, err := RequireService(WithPrincipal(context.Background(), &Principal{UserID: "user_1"}))
	const want = "permission_denied: publishing needs a service credential; user session tokens may not publish"
	if err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
}

func TestRequireUser(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		ctx      context.Context
		wantCode connect.Code // 0: allowed
		wantErr  error
	}{
		{"user session", WithPrincipal(context.Background(), &Principal{UserID: "user_1", SessionID: "s", HouseholdID: "h"}), 0, nil},
		{"service", WithPrincipal(context.Background(), &Principal{UserID: "user_1", Service: true}), connect.CodePermissionDenied, ErrServiceNotAllowed},
		{"no principal", context.Background(), connect.CodeUnauthenticated, ErrMissingToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := RequireUser(tt.ctx)
			if tt.wantCode == 0 {
				if err != nil || p == nil || p.Service {
					t.Fatalf("RequireUser = %v, %v", p, err)
				}
				return
			}
			if connect.CodeOf(err) != tt.wantCode || !errors.Is(err, tt.wantErr) || p != nil {
				t.Fatalf("RequireUser = %v, %v; want %v wrapping %v", p, err, tt.wantCode, tt.wantErr)
			}
		})
	}
}

// TestPrincipalNamespaces: a service and a user with the same id have
// different keys and are logged under different attribute names.
func TestPrincipalNamespaces(t *testing.T) {
	t.Parallel()
	svc := &Principal{UserID: "dev", Service: true}
	user := &Principal{UserID: "dev", SessionID: "sess_1", HouseholdID: "home"}
	if svc.Key() == user.Key() || svc.Key() != "service:dev" || user.Key() != "user:dev" {
		t.Fatalf("keys %q and %q", svc.Key(), user.Key())
	}
	attrs := func(p *Principal) string {
		var b strings.Builder
		for _, a := range p.LogAttrs() {
			fmt.Fprintf(&b, "%s=%s ", a.Key, a.Value)
		}
		return strings.TrimSpace(b.String())
	}
	if got := attrs(svc); got != "service=dev" {
		t.Errorf("service logged as %q", got)
	}
	if got := attrs(user); got != "user=dev household=home session=sess_1" {
		t.Errorf("user logged as %q", got)
	}
}
