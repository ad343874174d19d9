package version

import (
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	tests := []struct {
		name string
		info Info
		want string
	}{
		{"no vcs", Info{Module: "(devel)", Go: "go1.26.8"}, "realtimed (devel) go1.26.8"},
		{"tagged", Info{Module: "v1.2.0", Revision: "0123456789abcdef0123", Time: "2026-12-01T07:00:00Z", Go: "go1.26.8"},
			"realtimed v1.2.0 revision 0123456789ab (2026-12-01T07:00:00Z) go1.26.8"},
		{"modified", Info{Module: "(devel)", Revision: "abc", Modified: true}, "realtimed (devel) revision abc (modified)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.info.String("realtimed"); got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRequested(t *testing.T) {
	for args, want := range map[string]bool{
		"--version": true, "-version": true, "--version --dev": false, "--dev": false, "": false,
	} {
		if got := Requested(strings.Fields(args)); got != want {
			t.Errorf("Requested(%q) = %v, want %v", args, got, want)
		}
	}
}

func TestReadInTest(t *testing.T) {
	// A test binary has build info; its main module is this one.
	if i := Read(); i.Module == "" || i.Go == "" {
		t.Fatalf("Read() = %+v", i)
	}
}
