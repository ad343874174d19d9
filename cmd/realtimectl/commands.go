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
	{"health", "probe /healthz or /readyz without a credential (a container's health check)", runHealth},
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
  realtimectl subscribe --user bob --household home
  realtimectl publish --service-key "$REALTIMECTL_SERVICE_KEY" --to-household home --notification "Dinner's ready"
  realtimectl whoami --token "$TOKEN" --addr https://realtime.example --ca-file ca.pem
  realtimectl health --addr 127.0.0.1:8080

A flag means the same in every command, and every flag can be set by the
environment variable REALTIMECTL_<FLAG> (--addr: REALTIMECTL_ADDR,
--service-key: REALTIMECTL_SERVICE_KEY, ...); a flag on the command line
wins. Each command's --help lists them.
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

// envPrefix heads the environment variable of every realtimectl flag:
// REALTIMECTL_ + the flag's name upper-cased, dashes as underscores. A flag
// name means one thing in every command (--addr is always the server,
// --user always the user of a dev token), so one variable serves them all.
const envPrefix = "REALTIMECTL_"

// flagSet is a command's flags, bound to environment variables.
type flagSet struct {
	*flag.FlagSet
	cmd      string
	synopsis string
	std      *stdio
	// given holds the flags set on the command line (not from the
	// environment), once parsed; a deprecated spelling counts as its flag.
	given map[string]bool
}

func newFlagSet(std *stdio, cmd, synopsis string) *flagSet {
	fs := &flagSet{FlagSet: flag.NewFlagSet("realtimectl "+cmd, flag.ContinueOnError), cmd: cmd, synopsis: synopsis, std: std}
	fs.SetOutput(io.Discard) // errors are returned, help printed by parse
	return fs
}

// deprecated registers old as a deprecated spelling of the flag current:
// it still works, with a warning on stderr.
func (fs *flagSet) deprecated(old, current string) {
	config.Deprecated(fs.FlagSet, old, current, fs.std.stderr)
}

// parse parses args, then fills unset flags from the environment. It
// returns flag.ErrHelp after printing the help for --help.
func (fs *flagSet) parse(args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(fs.std.stdout)
			config.Usage(fs.FlagSet, fs.synopsis, envPrefix, nil)()
			fs.SetOutput(io.Discard)
			return flag.ErrHelp
		}
		return &usageError{cmd: fs.cmd, err: err}
	}
	if fs.NArg() > 0 {
		return usagef(fs.cmd, "unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	fs.given = config.Given(fs.FlagSet)
	if err := config.ApplyEnv(fs.FlagSet, envPrefix, nil); err != nil {
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

// credFlags are the ways a person's command gets its bearer credential: a
// token, or fresh dev tokens minted with the dev key. The dev token's flags
// are those of `realtimectl token`.
type credFlags struct {
	token     string
	user      string
	household string
	ttl       time.Duration
	rooms     config.StringList
	dataDir   string
}

func (c *credFlags) register(fs *flagSet) {
	fs.StringVar(&c.token, "token", "", "bearer `credential`: a session token (from `realtimectl token` or Clerk) or a service key")
	fs.StringVar(&c.user, "user", "", "dev mode: instead of --token, mint a fresh token for this `user` with the dev key in\n--data-dir before every connection")
	fs.StringVar(&c.household, "household", "", "dev mode: the `household` of --user's tokens (default: the server's default household)")
	fs.DurationVar(&c.ttl, "ttl", auth.DefaultDevTokenTTL, "dev mode: lifetime of --user's tokens, at most 24h")
	fs.Var(&c.rooms, "rooms", "dev mode: comma-separated extra `rooms` --user's tokens join, e.g. room:bench")
	registerDataDir(fs, &c.dataDir)
	fs.deprecated("dev-user", "user")
	fs.deprecated("dev-household", "household")
	fs.deprecated("dev-ttl", "ttl")
}

// registerDataDir defines --data-dir, the same in every command.
func registerDataDir(fs *flagSet, dir *string) {
	fs.StringVar(dir, "data-dir", ".data", "`directory` holding realtimed --dev's signing key")
}

// source returns the Token function for client.Options.
func (c *credFlags) source(fs *flagSet) (func(context.Context) (string, error), error) {
	token, user := c.token, c.user
	if token != "" && user != "" {
		// One from the command line and one from the environment: the
		// command line wins.
		switch {
		case fs.given["token"] && !fs.given["user"]:
			user = ""
		case fs.given["user"] && !fs.given["token"]:
			token = ""
		default:
			return nil, usagef(fs.cmd, "--token and --user exclude each other")
		}
	}
	switch {
	case token != "":
		return func(context.Context) (string, error) { return token, nil }, nil
	case user != "":
		if c.ttl <= 0 || c.ttl > 24*time.Hour {
			return nil, usagef(fs.cmd, "--ttl must be between 1s and 24h, not %v", c.ttl)
		}
		key, err := loadDevKey(c.dataDir)
		if err != nil {
			return nil, err
		}
		opts := auth.MintOptions{UserID: user, HouseholdID: c.household, TTL: c.ttl, ExtraRooms: c.rooms}
		if _, _, err := key.Mint(opts); err != nil {
			return nil, usagef(fs.cmd, "--user: %v", err)
		}
		return func(context.Context) (string, error) {
			tok, _, err := key.Mint(opts)
			return tok, err
		}, nil
	}
	return nil, usagef(fs.cmd, "no credential: pass --token (or set REALTIMECTL_TOKEN), or --user against realtimed --dev")
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
