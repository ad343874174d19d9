// Package version reports what a binary was built from: the module version
// and the VCS revision that the Go toolchain records in every binary built
// from a checkout (runtime/debug.ReadBuildInfo), so `--version` needs no
// linker flags and cannot drift from the source.
package version

import (
	"fmt"
	"runtime/debug"
)

// Info is what a binary was built from.
type Info struct {
	// Module is the main module's version: a tag such as "v1.2.0" when
	// installed with `go install ...@v1.2.0`, or "(devel)" or a
	// pseudo-version when built from a checkout.
	Module string
	// Revision is the VCS commit, empty when the build had no VCS data
	// (for example -buildvcs=false).
	Revision string
	// Time is the commit time in RFC 3339, empty without VCS data.
	Time string
	// Modified reports uncommitted changes in the work tree at build time.
	Modified bool
	// Go is the toolchain that built the binary.
	Go string
}

// Read returns the build information of the running binary.
func Read() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return Info{Module: "unknown"}
	}
	info := Info{Module: bi.Main.Version, Go: bi.GoVersion}
	if info.Module == "" {
		info.Module = "(devel)"
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			info.Revision = s.Value
		case "vcs.time":
			info.Time = s.Value
		case "vcs.modified":
			info.Modified = s.Value == "true"
		}
	}
	return info
}

// String is the one line `--version` prints, for example
// "realtimed (devel) revision 1a2b3c4d5e6f (2026-12-01T07:00:00Z, modified) go1.26.8".
func (i Info) String(binary string) string {
	s := binary + " " + i.Module
	if i.Revision != "" {
		rev := i.Revision
		if len(rev) > 12 {
			rev = rev[:12]
		}
		s += " revision " + rev
		detail := i.Time
		if i.Modified {
			if detail != "" {
				detail += ", "
			}
			detail += "modified"
		}
		if detail != "" {
			s += " (" + detail + ")"
		}
	}
	if i.Go != "" {
		s += " " + i.Go
	}
	return s
}

// Requested reports whether args ask for the version alone: exactly one
// argument, --version or -version (the flag package accepts either).
func Requested(args []string) bool {
	return len(args) == 1 && (args[0] == "--version" || args[0] == "-version")
}

// Print writes the version line of binary to w.
func Print(w interface{ Write([]byte) (int, error) }, binary string) {
	fmt.Fprintln(w, Read().String(binary))
}
