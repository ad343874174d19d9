package devhost

import (
	"slices"
	"testing"
)

func TestAllowed(t *testing.T) {
	allowed := normalize([]string{"Realtime.LAN:8080"})
	for _, tt := range []struct {
		host string
		want bool
	}{
		{"localhost", true},
		{"LOCALHOST:9999", true},
		{"localhost.", true},
		{"127.0.0.1", true},
		{"127.1.2.3:8080", true},
		{"[::1]:8080", true},
		{"[::1]", true},
		{"realtime.lan:1234", true},
		{"REALTIME.LAN.", true},
		{"evil.example", false},
		{"evil.example:8080", false},
		{"127.0.0.1.evil.example", false},
		{"localhost.evil.example:80", false},
		{"10.0.0.7:8080", false},
		{"", false},
	} {
		if got := Allowed(tt.host, allowed); got != tt.want {
			t.Errorf("Allowed(%q) = %v, want %v", tt.host, got, tt.want)
		}
	}
	if Allowed("realtime.lan", nil) {
		t.Error("an allowed name passes without being allowed")
	}
}

func TestNormalize(t *testing.T) {
	got := normalize([]string{" Realtime.LAN:8080 ", "box.", "[fe80::1]:80", "", "  "})
	if want := []string{"realtime.lan", "box", "fe80::1"}; !slices.Equal(got, want) {
		t.Errorf("normalize = %q, want %q", got, want)
	}
}
