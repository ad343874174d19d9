// Package module is the extension point of the realtime server: a module
// is a feature (the shopping list is the reference one) that serves its
// own Connect services next to RealtimeService and announces its changes
// as typed events. The server knows modules only through [Module]; it
// never names one.
//
// A module gets an [Env] when the server mounts it: the handler options
// every service needs (authentication, the caller's origin, rate and size
// limits) and an [Emitter] on the server's broker. Its handlers read the
// verified caller from their context (auth.RequireUser and friends) and map
// their errors with rpcerr.Error, so that codes mean the same everywhere.
//
// The embeddable root package (github.com/honeydo/realtime) re-exports
// these types, so that an application's module and an internal one are
// written the same way; docs/MODULES.md walks through adding one.
package module

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"connectrpc.com/connect"
)

// Module is a feature plugged into the realtime server.
//
// Mount may be called more than once over the module's life (a test
// server that restarts mounts it again): it builds handlers and must not
// acquire resources. A module that holds resources (a database) opens them
// when it is constructed and releases them in its own Close, which its
// owner (the embedding application, realtimed) calls after the server
// stopped.
type Module interface {
	// Name names the module in logs and errors, and is the name
	// realtimed's --modules flag takes: lower case, no spaces.
	Name() string
	// Mount returns the module's Connect services, built with
	// env.HandlerOptions so that every call is authenticated and limited as
	// RealtimeService's are.
	Mount(env Env) ([]Service, error)
}

// Env is what the server hands a module when it mounts it.
type Env struct {
	// Emitter publishes events through the server's broker.
	Emitter *Emitter
	// HandlerOptions must be passed to the generated New…Handler
	// constructor: the auth and origin interceptors, rate limits and
	// message size limits.
	HandlerOptions []connect.HandlerOption
	// Logger is the server's logger.
	Logger *slog.Logger
}

// Service is one Connect service a module serves: the path and handler
// that a generated New…Handler constructor returns.
type Service struct {
	// Path is the service's route, "/package.Service/".
	Path string
	// Handler serves the service's procedures.
	Handler http.Handler
}

// NewService packs a generated constructor's two results into a Service:
//
//	module.NewService(shoppingv1connect.NewShoppingServiceHandler(svc, env.HandlerOptions...))
func NewService(path string, h http.Handler) Service { return Service{Path: path, Handler: h} }

// Name returns the fully-qualified name of the service ("package.Service"),
// which reflection and health report.
func (s Service) Name() string { return strings.Trim(s.Path, "/") }

// Mounted is a module's services as the server mounts them.
type Mounted struct {
	// Module is the module they came from.
	Module Module
	// Services are its services, each with a distinct path.
	Services []Service
}

// MountAll mounts every module with env and checks that no two services
// (of these modules, or the reserved paths, such as RealtimeService's)
// share a path: http.ServeMux would panic on the second. A nil module, an
// empty name or a module mounted twice is an error too.
func MountAll(env Env, modules []Module, reserved ...string) ([]Mounted, error) {
	seenPath := make(map[string]string)
	for _, p := range reserved {
		seenPath[p] = "the server"
	}
	seenName := make(map[string]bool)
	out := make([]Mounted, 0, len(modules))
	for i, m := range modules {
		if m == nil {
			return nil, fmt.Errorf("module %d is nil", i)
		}
		name := m.Name()
		if name == "" {
			return nil, fmt.Errorf("module %d (%T) has no name", i, m)
		}
		if seenName[name] {
			return nil, fmt.Errorf("module %q registered twice", name)
		}
		seenName[name] = true
		services, err := m.Mount(env)
		if err != nil {
			return nil, fmt.Errorf("module %q: %w", name, err)
		}
		for _, s := range services {
			if s.Handler == nil || !strings.HasPrefix(s.Path, "/") || !strings.HasSuffix(s.Path, "/") || len(s.Path) < 3 {
				return nil, fmt.Errorf("module %q: service %q needs a handler and a path of the form /package.Service/", name, s.Path)
			}
			if other, dup := seenPath[s.Path]; dup {
				return nil, fmt.Errorf("module %q: %s is already served by %s", name, s.Path, other)
			}
			seenPath[s.Path] = fmt.Sprintf("module %q", name)
		}
		out = append(out, Mounted{Module: m, Services: services})
	}
	return out, nil
}

// errNoBroker is returned by an Emitter without a broker (its zero value).
var errNoBroker = errors.New("module: the emitter has no broker (use the one the server hands out)")
