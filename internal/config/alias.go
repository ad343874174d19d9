package config

import (
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Deprecated registers old as a deprecated spelling of the flag named
// current, which must already be defined in fs: setting --old sets
// --current and writes a warning to warn. A deprecated spelling has no
// environment variable (ApplyEnv skips it, and a --old on the command line
// keeps --current's variable from applying), and Usage lists it apart
// under "Deprecated spellings".
func Deprecated(fs *flag.FlagSet, old, current string, warn io.Writer) {
	target := fs.Lookup(current)
	if target == nil {
		panic("config.Deprecated: no flag --" + current)
	}
	fs.Var(&alias{target: target, old: old, warn: warn}, old, "deprecated: use --"+current)
}

// alias is the flag.Value of a deprecated spelling.
type alias struct {
	target *flag.Flag
	old    string
	warn   io.Writer
}

func (a *alias) String() string {
	if a == nil || a.target == nil {
		return ""
	}
	return a.target.Value.String()
}

func (a *alias) Set(v string) error {
	fmt.Fprintf(a.warn, "warning: --%s is deprecated and will be removed: use --%s\n", a.old, a.target.Name)
	return a.target.Value.Set(v)
}

// IsBoolFlag lets a deprecated spelling of a boolean flag go without a
// value, like the flag itself.
func (a *alias) IsBoolFlag() bool {
	b, ok := a.target.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// Given returns the names of the flags of fs set on the command line, once
// parsed, counting a deprecated spelling as the flag it stands for.
func Given(fs *flag.FlagSet) map[string]bool {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) {
		if a, ok := f.Value.(*alias); ok {
			given[a.target.Name] = true
			return
		}
		given[f.Name] = true
	})
	return given
}

// deprecatedUsage lists the deprecated spellings of fs, if any.
func deprecatedUsage(w io.Writer, fs *flag.FlagSet) {
	var lines []string
	fs.VisitAll(func(f *flag.Flag) {
		if a, ok := f.Value.(*alias); ok {
			lines = append(lines, fmt.Sprintf("  --%s: use --%s", f.Name, a.target.Name))
		}
	})
	if len(lines) == 0 {
		return
	}
	sort.Strings(lines)
	fmt.Fprintf(w, "\nDeprecated spellings (accepted with a warning on stderr; no environment variable):\n%s\n", strings.Join(lines, "\n"))
}

func isAlias(f *flag.Flag) bool {
	_, ok := f.Value.(*alias)
	return ok
}
