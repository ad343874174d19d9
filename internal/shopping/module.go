package shopping

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/honeydo/realtime/gen/honeydo/shopping/v1/shoppingv1connect"
	"github.com/honeydo/realtime/internal/module"
)

// ModuleName is the module's name: realtimed's --modules takes it.
const ModuleName = "shopping"

// DBFile is the name of the module's SQLite database in its data directory.
const DBFile = "shopping.db"

// Module plugs the shopping list into the realtime server
// ([module.Module]): it serves ShoppingService over a [Store] and emits
// through the server's emitter.
type Module struct {
	store *Store
	owned bool // Close closes store
}

var _ module.Module = (*Module)(nil)

// NewModule returns the module over store, which stays the caller's to
// close.
func NewModule(store *Store) *Module { return &Module{store: store} }

// ModuleConfig configures [OpenModule].
type ModuleConfig struct {
	// DataDir is the directory of the module's database ([DBFile]); it is
	// created (mode 0700) if missing. Required.
	DataDir string
	// MaxItemsPerHousehold caps one household's list. Zero means
	// [DefaultMaxItemsPerHousehold]; negative means no cap.
	MaxItemsPerHousehold int
}

// OpenModule opens (creating if needed) the module's store in
// cfg.DataDir, as realtimed does for --modules shopping. Close the module
// to close the store.
func OpenModule(ctx context.Context, cfg ModuleConfig) (*Module, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("shopping: module: no data directory")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("shopping: module: %w", err)
	}
	var opts []StoreOption
	if cfg.MaxItemsPerHousehold != 0 {
		opts = append(opts, WithMaxItemsPerHousehold(cfg.MaxItemsPerHousehold))
	}
	store, err := OpenStore(ctx, filepath.Join(cfg.DataDir, DBFile), opts...)
	if err != nil {
		return nil, err
	}
	return &Module{store: store, owned: true}, nil
}

// Name implements [module.Module].
func (m *Module) Name() string { return ModuleName }

// Mount implements [module.Module]: ShoppingService on the module's store.
func (m *Module) Mount(env module.Env) ([]module.Service, error) {
	svc := NewService(m.store, env.Emitter, env.Logger)
	return []module.Service{
		module.NewService(shoppingv1connect.NewShoppingServiceHandler(svc, env.HandlerOptions...)),
	}, nil
}

// Close closes the store if [OpenModule] opened it; a store handed to
// [NewModule] stays open.
func (m *Module) Close() error {
	if !m.owned {
		return nil
	}
	return m.store.Close()
}
