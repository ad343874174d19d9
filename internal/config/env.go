// Package config binds command-line flags to environment variables, so that
// every flag of realtimed and realtimectl can also be set in the
// environment, as containers and process managers expect.
package config

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

// EnvName returns the environment variable for a flag: prefix + the flag's
// name upper-cased with dashes as underscores, unless overrides names one.
func EnvName(prefix, flagName string, overrides map[string]string) string {
	if name, ok := overrides[flagName]; ok {
		return name
	}
	return prefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// ApplyEnv sets every flag of fs that was not given on the command line from
// its environment variable, if that is set. Call it after fs.Parse; a flag
// on the command line always wins.
//
// Deprecated spellings (see [Deprecated]) have no variable of their own,
// and one given on the command line counts as its flag given.
func ApplyEnv(fs *flag.FlagSet, prefix string, overrides map[string]string) error {
	given := Given(fs)
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || isAlias(f) || err != nil {
			return
		}
		env := EnvName(prefix, f.Name, overrides)
		if v, ok := os.LookupEnv(env); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("environment variable %s: %w", env, e)
			}
		}
	})
	return err
}

// Usage returns a flag.Usage function that prints a synopsis, then every
// flag with its default and environment variable, then the deprecated
// spellings, if any.
func Usage(fs *flag.FlagSet, synopsis, prefix string, overrides map[string]string) func() {
	return func() {
		out := fs.Output()
		fmt.Fprint(out, synopsis)
		fmt.Fprintln(out, "\nFlags (each can also be set by the environment variable shown):")
		fs.VisitAll(func(f *flag.Flag) {
			if isAlias(f) {
				return
			}
			name, usage := flag.UnquoteUsage(f)
			fmt.Fprintf(out, "  --%s", f.Name)
			if name != "" {
				fmt.Fprintf(out, " %s", name)
			}
			fmt.Fprintf(out, "\n      %s\n", strings.ReplaceAll(usage, "\n", "\n      "))
			def := f.DefValue
			if def != "" && def != "false" && def != "0" && def != "0s" {
				fmt.Fprintf(out, "      default: %s\n", def)
			}
			fmt.Fprintf(out, "      env: %s\n", EnvName(prefix, f.Name, overrides))
		})
		deprecatedUsage(out, fs)
	}
}

// StringList is a comma-separated list flag.
type StringList []string

// String implements flag.Value.
func (l *StringList) String() string { return strings.Join(*l, ",") }

// Set implements flag.Value; it replaces the list.
func (l *StringList) Set(v string) error {
	*l = nil
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}
