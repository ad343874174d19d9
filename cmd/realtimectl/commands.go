package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/honeydo/realtime/client"
	"github.com/honeydo/realtime/internal/auth"
	"github.com/honeydo/realtime/internal/config"
	"github.com/honeydo/realtime/internal/version"
)

// command is one subcommand. A new one (e.g. bench) is a file with its run
// function and a line in commands.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, io *stdio, args []string) error
}

// commands in the order `realtimectl --help` lists them.
var commands = []command{
	{"token", "mint a dev session token (dev mode only)", runToken},
	{"subscribe", "follow the event stream as JSON lines, reconnecting and resuming", runSubscribe},
	{"publish", "publish an event with a service key", runPublish},
	{"ping", "check that the server answers an authenticated call", runPing},
	{"whoami", "show who the server thinks a token belongs to", runWhoAmI},
	{"bench", "load-test a realtimed --dev --bench-api (the peers' workloads and RESULT line)", runBench},
}

// stdio is where a command writes.
type stdio struct {
	stdout, stderr io.Writer
}

// usageError is a mistake on the command line: main exits 2 for it.
type usageError struct {
	cmd string
	err error
}

func (e *usageError) Error() string {
	help := "realtimectl --help"
	if e.cmd != "" {
		help = "realtimectl " + e.cmd + " --help"
	}
	return fmt.Sprintf("%v\nRun '%s' for usage.", e.err, help)
}

func (e *usageError) Unwrap() error { return e.err }

func usagef(cmd, format string, args ...any) error {
	return &usageError{cmd: cmd, err: fmt.Errorf(format, args...)}
}

const topUsage = `realtimectl — the terminal companion of realtimed (HoneyDo Realtime).

Usage:
  realtimectl <command> [flags]
  realtimectl <command> --help
  realtimectl --version

Commands:
%s
Examples:
  TOKEN=$(realtimectl token --user alice --household home)
  realtimectl subscribe --token "$TOKEN"
  realtimectl subscribe --dev-user bob --dev-household home
  realtimectl publish --service-key "$REALTIME_SERVICE_KEY" --household home --notification "Dinner's ready"
  realtimectl whoami --token "$TOKEN"

Flags that name the server or a credential share one environment variable
across commands (REALTIME_ADDR, REALTIME_TOKEN, REALTIME_SERVICE_KEY, ...);
the others are REALTIMECTL_<COMMAND>_<FLAG>. Each command's --help lists them.
`

func printTopUsage(w io.Writer) {
	var b strings.Builder
	for _, c := range commands {
		fmt.Fprintf(&b, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, topUsage, b.String())
}

// run is realtimectl without the process around it: it parses args (the
// command line without the program name), runs the command and returns its
// error. --help prints to stdout and returns nil.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	std := &stdio{stdout: stdout, stderr: stderr}
	if len(args) == 0 {
		printTopUsage(stderr)
		return &usageError{err: errors.New("no command given")}
	}
	name, rest := args[0], args[1:]
	switch name {
	case "-h", "-help", "--help", "help":
		if name == "help" && len(rest) > 0 {
			return run(ctx, []string{rest[0], "--help"}, stdout, stderr)
		}
		printTopUsage(stdout)
		return nil
	case "-version", "--version", "version":
		version.Print(stdout, "realtimectl")
		return nil
	}
	for _, c := range commands {
		if c.name == name {
			return c.run(ctx, std, rest)
		}
	}
	return usagef("", "unknown command %q", name)
}

// sharedEnv names the environment variables of flags that several commands
// share: they describe the server and the credentials, not one command.
var sharedEnv = map[string]string{
	"addr":          "REALTIME_ADDR",
	"protocol":      "REALTIME_PROTOCOL",
	"token":         "REALTIME_TOKEN",
	"service-key":   "REALTIME_SERVICE_KEY",
	"data-dir":      "REALTIME_DATA_DIR",
	"dev-user":      "REALTIME_DEV_USER",
	"dev-household": "REALTIME_DEV_HOUSEHOLD",
	"dev-ttl":       "REALTIME_DEV_TTL",
}

// flagSet is a command's flags, bound to environment variables.
type flagSet struct {
	*flag.FlagSet
	cmd      string
	synopsis string
	std      *stdio
	// given holds the flags set on the command line (not from the
	// environment), once parsed.
	given map[string]bool
}

func newFlagSet(std *stdio, cmd, synopsis string) *flagSet {
	fs := &flagSet{FlagSet: flag.NewFlagSet("realtimectl "+cmd, flag.ContinueOnError), cmd: cmd, synopsis: synopsis, std: std}
	fs.SetOutput(io.Discard) // errors are returned, help printed by parse
	return fs
}

func (fs *flagSet) envPrefix() string {
	return "REALTIMECTL_" + strings.ToUpper(fs.cmd) + "_"
}

// parse parses args, then fills unset flags from the environment. It
// returns flag.ErrHelp after printing the help for --help.
func (fs *flagSet) parse(args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(fs.std.stdout)
			config.Usage(fs.FlagSet, fs.synopsis, fs.envPrefix(), sharedEnv)()
			fs.SetOutput(io.Discard)
			return flag.ErrHelp
		}
		return &usageError{cmd: fs.cmd, err: err}
	}
	if fs.NArg() > 0 {
		return usagef(fs.cmd, "unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	fs.given = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { fs.given[f.Name] = true })
	if err := config.ApplyEnv(fs.FlagSet, fs.envPrefix(), sharedEnv); err != nil {
		return &usageError{cmd: fs.cmd, err: err}
	}
	return nil
}

// helpOK turns the ErrHelp of parse into success.
func helpOK(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

// server holds the flags that say where the server is.
type serverFlags struct {
	addr     string
	protocol string
}

func (s *serverFlags) register(fs *flagSet) {
	fs.StringVar(&s.addr, "addr", "http://127.0.0.1:8080", "the server's base `URL` (http:// is assumed when no scheme is given)")
	fs.StringVar(&s.protocol, "protocol", "connect", "wire `protocol`: connect, grpc (h2c on http://) or grpcweb")
}

// options returns the client options for the server flags.
func (s *serverFlags) options(cmd string) (client.Options, error) {
	p, err := client.ParseProtocol(s.protocol)
	if err != nil {
		return client.Options{}, usagef(cmd, "--protocol: %v", err)
	}
	addr := strings.TrimSpace(s.addr)
	if addr == "" {
		return client.Options{}, usagef(cmd, "--addr is empty")
	}
	if !strings.Contains(addr, "://") {
		if strings.HasPrefix(addr, ":") {
			addr = "127.0.0.1" + addr
		}
		addr = "http://" + addr
	}
	if !strings.HasPrefix(addr, "http://") && !strings.HasPrefix(addr, "https://") {
		return client.Options{}, usagef(cmd, "--addr must be an http:// or https:// URL, not %q", s.addr)
	}
	return client.Options{BaseURL: addr, Protocol: p}, nil
}

// credFlags are the ways a person's command gets its bearer credential: a
// token, or fresh dev tokens minted with the dev key.
type credFlags struct {
	token        string
	devUser      string
	devHousehold string
	devTTL       time.Duration
	dataDir      string
}

func (c *credFlags) register(fs *flagSet) {
	fs.StringVar(&c.token, "token", "", "bearer `credential`: a session token (from `realtimectl token` or Clerk) or a service key")
	fs.StringVar(&c.devUser, "dev-user", "", "dev mode: mint a fresh token for this `user` with the dev key in --data-dir before every\nconnection, instead of --token")
	fs.StringVar(&c.devHousehold, "dev-household", "", "dev mode: the `household` of --dev-user's tokens (default: the server's default household)")
	fs.DurationVar(&c.devTTL, "dev-ttl", auth.DefaultDevTokenTTL, "dev mode: lifetime of --dev-user's tokens")
	fs.StringVar(&c.dataDir, "data-dir", ".data", "`directory` holding realtimed --dev's signing key")
}

// source returns the Token function for [client.Options].
func (c *credFlags) source(fs *flagSet) (func(context.Context) (string, error), error) {
	token, devUser := c.token, c.devUser
	if token != "" && devUser != "" {
		// One from the command line and one from the environment: the
		// command line wins.
		switch {
		case fs.given["token"] && !fs.given["dev-user"]:
			devUser = ""
		case fs.given["dev-user"] && !fs.given["token"]:
			token = ""
		default:
			return nil, usagef(fs.cmd, "--token and --dev-user exclude each other")
		}
	}
	switch {
	case token != "":
		return func(context.Context) (string, error) { return token, nil }, nil
	case devUser != "":
		if c.devTTL <= 0 || c.devTTL > 24*time.Hour {
			return nil, usagef(fs.cmd, "--dev-ttl must be between 1s and 24h")
		}
		key, err := loadDevKey(c.dataDir)
		if err != nil {
			return nil, err
		}
		opts := auth.MintOptions{UserID: devUser, HouseholdID: c.devHousehold, TTL: c.devTTL}
		if _, _, err := key.Mint(opts); err != nil {
			return nil, usagef(fs.cmd, "--dev-user: %v", err)
		}
		return func(context.Context) (string, error) {
			tok, _, err := key.Mint(opts)
			return tok, err
		}, nil
	}
	return nil, usagef(fs.cmd, "no credential: pass --token (or set REALTIME_TOKEN), or --dev-user against realtimed --dev")
}

// loadDevKey loads realtimed --dev's key from dir without ever creating one:
// a key made here would sign tokens the server does not accept.
func loadDevKey(dir string) (*auth.DevKey, error) {
	if _, err := os.Stat(filepath.Join(dir, auth.DevKeyFile)); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no dev key in %s: start realtimed --dev first (or point --data-dir at its data directory)", dir)
	} else if err != nil {
		return nil, err
	}
	return auth.LoadOrCreateDevKey(dir)
}
