package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/honeydo/realtime/internal/module"
	"github.com/honeydo/realtime/internal/shopping"
)

// moduleOpener builds one module from realtimed's options.
type moduleOpener func(ctx context.Context, o *options) (module.Module, error)

// availableModules are the modules --modules may name. Adding a module to
// realtimed is one line here (docs/MODULES.md).
var availableModules = map[string]moduleOpener{
	shopping.ModuleName: func(ctx context.Context, o *options) (module.Module, error) {
		return shopping.OpenModule(ctx, shopping.ModuleConfig{DataDir: o.dataDir, MaxItemsPerHousehold: o.maxItemsPerHousehold})
	},
}

// registerModuleFlags registers the flags of the modules in
// availableModules. They exist whether or not the module runs, so that a
// configuration stays valid when --modules changes.
func registerModuleFlags(fs *flag.FlagSet, o *options) {
	fs.IntVar(&o.maxItemsPerHousehold, "max-items-per-household", shopping.DefaultMaxItemsPerHousehold, "shopping module: most items one household's shopping list may hold; adding more fails\nwith FAILED_PRECONDITION until some are removed (-1: no cap)")
}

// devModules run with --dev unless --modules says otherwise: the web demo
// needs the shopping list.
var devModules = []string{shopping.ModuleName}

// moduleNames lists availableModules for --help and errors.
func moduleNames() string {
	names := make([]string, 0, len(availableModules))
	for name := range availableModules {
		names = append(names, name)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// checkModules refuses names that are not in availableModules, or named
// twice.
func checkModules(names []string) error {
	seen := map[string]bool{}
	for _, name := range names {
		if _, ok := availableModules[name]; !ok {
			return fmt.Errorf("--modules: unknown module %q (available: %s)", name, moduleNames())
		}
		if seen[name] {
			return fmt.Errorf("--modules: %q named twice", name)
		}
		seen[name] = true
	}
	return nil
}

// openModules opens the modules o names, in order. The returned function
// closes those that hold resources, in reverse order; on error the ones
// already opened are closed.
func openModules(ctx context.Context, o *options) (mods []module.Module, closeAll func(), err error) {
	closeAll = func() {
		for _, m := range slices.Backward(mods) {
			if c, ok := m.(io.Closer); ok {
				_ = c.Close()
			}
		}
	}
	for _, name := range o.modules {
		m, err := availableModules[name](ctx, o)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("module %s: %w", name, err)
		}
		mods = append(mods, m)
	}
	return mods, closeAll, nil
}
