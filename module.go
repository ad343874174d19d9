package realtime

import (
	"net/http"

	"github.com/honeydo/realtime/internal/module"
)

// Module is a feature served next to RealtimeService: its own Connect
// services plus the events it emits. It has two methods:
//
//	Name() string                           // for logs and errors; unique
//	Mount(env ModuleEnv) ([]Service, error) // build the services
//
// Mount builds the services with env.HandlerOptions (authentication,
// origin, limits: a module's calls are checked as RealtimeService's are)
// and keeps env.Emitter to send events. It may be called more than once
// and must not acquire resources; a module that holds some (a database)
// opens them before [New] and closes them after [Realtime.Close]. The
// shopping list (internal/shopping) is the reference module and
// docs/MODULES.md the guide.
type Module = module.Module

// ModuleEnv is what a [Module] gets when it is mounted. Its fields:
//
//	Emitter        *Emitter                // sends events to the service's streams
//	HandlerOptions []connect.HandlerOption // pass to the generated New…Handler
//	Logger         *slog.Logger            // the service's logger
type ModuleEnv = module.Env

// Service is one Connect service of a [Module]: Path ("/package.Service/")
// and Handler, the two results of a generated New…Handler constructor;
// [NewService] packs them.
type Service = module.Service

// NewService packs a generated constructor's results into a [Service]:
//
//	realtime.NewService(choresv1connect.NewChoresServiceHandler(h, env.HandlerOptions...))
func NewService(path string, handler http.Handler) Service { return module.NewService(path, handler) }
