package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	systemv1 "github.com/honeydo/realtime/gen/honeydo/system/v1"
	"github.com/honeydo/realtime/internal/auth"
	"github.com/honeydo/realtime/internal/testkit"
)

func TestTokenThenWhoAmI(t *testing.T) {
	checkGoroutines(t)
	srv := testkit.StartServer(t)
	out := mustCLI(t, "token", "--user", "alice", "--household", "h1", "--ttl", "5m", "--rooms", "room:bench", "--data-dir", srv.DataDir)
	token := strings.TrimSpace(out)
	if strings.Count(out, "\n") != 1 || strings.Count(token, ".") != 2 {
		t.Fatalf("token printed %q, want just a JWT and a newline", out)
	}
	for _, protocol := range []string{"connect", "grpc", "grpcweb"} {
		out = mustCLI(t, "whoami", "--addr", srv.URL, "--token", token, "--protocol", protocol)
		var who realtimev1.WhoAmIResponse
		if err := protojson.Unmarshal([]byte(out), &who); err != nil {
			t.Fatalf("whoami printed %q: %v", out, err)
		}
		if who.GetUserId() != "alice" || who.GetHouseholdId() != "h1" || who.GetService() {
			t.Fatalf("whoami: %v", &who)
		}
		if got := strings.Join(who.GetRooms(), ","); got != "user:alice,household:h1,broadcast,room:bench" {
			t.Fatalf("rooms %s", got)
		}
		if ttl := time.Until(who.GetExpireTime().AsTime()); ttl < 4*time.Minute || ttl > 5*time.Minute {
			t.Fatalf("token expires in %v, want about 5m", ttl)
		}
	}
	// A service key is a credential too.
	out = mustCLI(t, "whoami", "--addr", srv.URL, "--token", srv.Key.ServiceKey())
	if !strings.Contains(out, `"service": true`) {
		t.Fatalf("whoami with the service key: %s", out)
	}
}

// The README gets Publish's credential with `token --service`: the printed
// key must be the one the dev server accepts, and it must publish.
func TestTokenServicePrintsTheDevServiceKey(t *testing.T) {
	checkGoroutines(t)
	srv := testkit.StartServer(t)
	out := mustCLI(t, "token", "--service", "--data-dir", srv.DataDir)
	if out != srv.Key.ServiceKey()+"\n" {
		t.Fatalf("token --service printed %q, want the dev service key and a newline", out)
	}
	who := mustCLI(t, "whoami", "--addr", srv.URL, "--token", strings.TrimSpace(out))
	if !strings.Contains(who, `"service": true`) {
		t.Fatalf("whoami with the printed key: %s", who)
	}
	if _, _, err := cli(t, "token", "--service", "--user", "alice", "--data-dir", srv.DataDir); err == nil || !strings.Contains(err.Error(), "takes no --user") {
		t.Fatalf("token --service --user: error %v", err)
	}
}

func TestTokenWithoutDevKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".data")
	_, _, err := cli(t, "token", "--user", "alice", "--data-dir", dir)
	if err == nil || !strings.Contains(err.Error(), "no dev key in "+dir+": start realtimed --dev first") {
		t.Fatalf("error %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("token created %s: a key made by realtimectl would sign tokens no server accepts", dir)
	}
	// The same for every command that mints.
	_, _, err = cli(t, "subscribe", "--user", "alice", "--data-dir", dir)
	if err == nil || !strings.Contains(err.Error(), "start realtimed --dev first") {
		t.Fatalf("subscribe error %v", err)
	}
}

func TestPing(t *testing.T) {
	checkGoroutines(t)
	srv := testkit.StartServer(t)
	out := mustCLI(t, "ping", "--addr", strings.TrimPrefix(srv.URL, "http://"), "--user", "alice", "--data-dir", srv.DataDir)
	if !strings.HasPrefix(out, "pong from "+srv.URL+": server time ") {
		t.Fatalf("ping printed %q", out)
	}
	_, _, err := cli(t, "ping", "--addr", srv.URL, "--token", "nonsense")
	if err == nil || !strings.Contains(err.Error(), "unauthenticated") {
		t.Fatalf("ping with a bad token: %v", err)
	}
}

// TestPublishThenSubscribe: subscribe prints exactly the events its user
// may see, as JSON lines, in publish order.
func TestPublishThenSubscribe(t *testing.T) {
	checkGoroutines(t)
	srv := testkit.StartServer(t)
	sub := cliBackground(t, "subscribe", "--addr", srv.URL, "--user", "bob", "--household", "home",
		"--data-dir", srv.DataDir, "--max-events", "3")
	sub.waitStderr(t, "connected as bob in household home")

	key := srv.Key.ServiceKey()
	publish := func(args ...string) *realtimev1.PublishResponse {
		t.Helper()
		if args[0] != "--dev" {
			args = append([]string{"--service-key", key}, args...)
		}
		out := mustCLI(t, append([]string{"publish", "--addr", srv.URL}, args...)...)
		var res realtimev1.PublishResponse
		if err := protojson.Unmarshal([]byte(out), &res); err != nil || res.GetEventId() == "" || res.GetCursor() == "" {
			t.Fatalf("publish printed %q (%v)", out, err)
		}
		return &res
	}
	publish("--to-household", "home", "--except", "bob", "--notification", "not for bob")
	publish("--to-household", "other", "--notification", "another household")
	hello := publish("--to-household", "home", "--notification", "hello", "--level", "success", "--title", "Hi", "--sender", "alice", "--origin", "alice-tab-7")
	setting := publish("--to-user", "bob", "--setting", "theme=dark")
	milk := publish("--dev", "--data-dir", srv.DataDir, "--broadcast", "--json", `{"itemAdded":{"item":{"name":"Milk"}}}`)

	if err := sub.wait(t); err != nil {
		t.Fatalf("subscribe: %v\nstderr:\n%s", err, sub.stderr.String())
	}
	lines := strings.Split(strings.TrimSuffix(sub.stdout.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("subscribe printed %d lines:\n%s", len(lines), sub.stdout.String())
	}
	var evs []*realtimev1.Event
	for _, line := range lines {
		if !json.Valid([]byte(line)) {
			t.Fatalf("not a JSON line: %q", line)
		}
		ev := &realtimev1.Event{}
		if err := protojson.Unmarshal([]byte(line), ev); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	n := evs[0].GetNotification()
	if evs[0].GetId() != hello.GetEventId() || evs[0].GetCursor() != hello.GetCursor() || n.GetMessage() != "hello" ||
		n.GetLevel() != systemv1.Notification_LEVEL_SUCCESS || n.GetTitle() != "Hi" || evs[0].GetSenderUserId() != "alice" ||
		evs[0].GetOrigin() != "alice-tab-7" {
		t.Fatalf("first event: %s", lines[0])
	}
	if evs[1].GetId() != setting.GetEventId() || evs[1].GetSettingUpdated().GetKey() != "theme" || evs[1].GetSettingUpdated().GetValue() != "dark" {
		t.Fatalf("second event: %s", lines[1])
	}
	if evs[2].GetId() != milk.GetEventId() || evs[2].GetItemAdded().GetItem().GetName() != "Milk" {
		t.Fatalf("third event: %s", lines[2])
	}
	if want := "stopped after 3 events; resume with --cursor " + milk.GetCursor(); !strings.Contains(sub.stderr.String(), want) {
		t.Fatalf("stderr lacks %q:\n%s", want, sub.stderr.String())
	}
}

func TestSubscribeProtocols(t *testing.T) {
	checkGoroutines(t)
	srv := testkit.StartServer(t)
	token := srv.Token(t, "carol", "home", time.Minute)
	for _, protocol := range []string{"connect", "grpc", "grpcweb"} {
		t.Run(protocol, func(t *testing.T) {
			sub := cliBackground(t, "subscribe", "--addr", srv.URL, "--token", token, "--protocol", protocol, "--max-events", "1")
			sub.waitStderr(t, "connected as carol")
			mustCLI(t, "publish", "--addr", srv.URL, "--service-key", srv.Key.ServiceKey(), "--protocol", protocol, "--to-user", "carol", "--notification", protocol)
			if err := sub.wait(t); err != nil {
				t.Fatal(err)
			}
			if out := sub.stdout.String(); !strings.Contains(out, `"message":"`+protocol+`"`) {
				t.Fatalf("stdout %q", out)
			}
		})
	}
}

// TestSubscribeResume: a second run given the cursor the first one printed
// gets exactly what was published in between.
func TestSubscribeResume(t *testing.T) {
	checkGoroutines(t)
	srv := testkit.StartServer(t)
	common := []string{"--addr", srv.URL, "--user", "dave", "--data-dir", srv.DataDir}
	sub := cliBackground(t, append([]string{"subscribe", "--max-events", "1"}, common...)...)
	sub.waitStderr(t, "connected as dave")
	first := mustCLI(t, "publish", "--addr", srv.URL, "--dev", "--data-dir", srv.DataDir, "--to-user", "dave", "--notification", "first")
	if err := sub.wait(t); err != nil {
		t.Fatal(err)
	}
	var res realtimev1.PublishResponse
	if err := protojson.Unmarshal([]byte(first), &res); err != nil {
		t.Fatal(err)
	}
	for _, msg := range []string{"second", "third"} {
		mustCLI(t, "publish", "--addr", srv.URL, "--dev", "--data-dir", srv.DataDir, "--to-user", "dave", "--notification", msg)
	}
	again := cliBackground(t, append([]string{"subscribe", "--max-events", "2", "--cursor", res.GetCursor()}, common...)...)
	if err := again.wait(t); err != nil {
		t.Fatal(err)
	}
	out := again.stdout.String()
	if !strings.Contains(out, `"message":"second"`) || !strings.Contains(out, `"message":"third"`) || strings.Contains(out, `"first"`) {
		t.Fatalf("resumed run printed:\n%s", out)
	}
	if !strings.Contains(again.stderr.String(), "resumed after cursor "+res.GetCursor()+", nothing missed") {
		t.Fatalf("stderr:\n%s", again.stderr.String())
	}
}

// TestSubscribeReportsReconnects: stderr tells when the stream dropped,
// when it came back, whether it resumed, and when to resync.
func TestSubscribeReportsReconnects(t *testing.T) {
	checkGoroutines(t)
	srv := testkit.StartServer(t)
	sub := cliBackground(t, "subscribe", "--addr", srv.URL, "--user", "erin", "--data-dir", srv.DataDir)
	sub.waitStderr(t, "connected as erin")

	srv.Restart(false) // history kept: resume
	sub.waitStderr(t, "disconnected: unavailable: server is shutting down")
	sub.waitStderr(t, "reconnected: resumed after cursor")

	srv.Restart(true) // history lost: resync
	sub.waitStderr(t, "reconnected: could not resume")
	sub.waitStderr(t, "resync: events may have been missed (epoch changed")

	mustCLI(t, "publish", "--addr", srv.URL, "--dev", "--data-dir", srv.DataDir, "--to-user", "erin", "--notification", "after")
	sub.waitLines(t, 1)
	if err := sub.stop(t); err != nil {
		t.Fatalf("Ctrl-C should end subscribe cleanly, got %v", err)
	}
	if !strings.Contains(sub.stderr.String(), "stopped after 1 event; resume with --cursor ") {
		t.Fatalf("stderr:\n%s", sub.stderr.String())
	}
	t.Logf("stderr:\n%s", sub.stderr.String())
}

func TestSubscribeRejectedToken(t *testing.T) {
	checkGoroutines(t)
	srv := testkit.StartServer(t)
	_, stderr, err := cli(t, "subscribe", "--addr", srv.URL, "--token", "eyJbad.token.here")
	if err == nil || !strings.Contains(err.Error(), "unauthenticated") || !strings.Contains(err.Error(), "get a fresh one") {
		t.Fatalf("error %v", err)
	}
	if strings.Count(stderr, "reconnecting") != 1 {
		t.Fatalf("want exactly one retry:\n%s", stderr)
	}
}

// TestEnvironment: flags come from the environment when not given, and a
// flag on the command line wins over another flag's environment variable.
func TestEnvironment(t *testing.T) {
	checkGoroutines(t)
	srv := testkit.StartServer(t)
	t.Setenv("REALTIMECTL_ADDR", srv.URL)
	t.Setenv("REALTIMECTL_DATA_DIR", srv.DataDir)
	t.Setenv("REALTIMECTL_USER", "frank")
	t.Setenv("REALTIMECTL_HOUSEHOLD", "h9")
	t.Setenv("REALTIMECTL_TTL", "3m")
	token := strings.TrimSpace(mustCLI(t, "token"))
	// The same variables make whoami mint the same identity.
	for _, args := range [][]string{{"whoami"}, {"whoami", "--token", token}} {
		out := mustCLI(t, args...)
		if !strings.Contains(out, `"userId": "frank"`) || !strings.Contains(out, `"householdId": "h9"`) {
			t.Fatalf("%v from the environment: %s", args, out)
		}
	}
	t.Setenv("REALTIMECTL_TOKEN", token)
	// REALTIMECTL_TOKEN and REALTIMECTL_USER both set: no way to choose.
	if _, _, err := cli(t, "whoami"); err == nil || !strings.Contains(err.Error(), "--token and --user exclude each other") {
		t.Fatalf("whoami with both in the environment: %v", err)
	}
	// --user on the command line beats REALTIMECTL_TOKEN.
	if out := mustCLI(t, "whoami", "--user", "gina"); !strings.Contains(out, `"userId": "gina"`) {
		t.Fatalf("whoami --user: %s", out)
	}
	os.Unsetenv("REALTIMECTL_USER")
	if out := mustCLI(t, "whoami"); !strings.Contains(out, `"userId": "frank"`) {
		t.Fatalf("whoami with REALTIMECTL_TOKEN: %s", out)
	}
	t.Setenv("REALTIMECTL_SERVICE_KEY", srv.Key.ServiceKey())
	mustCLI(t, "publish", "--broadcast", "--notification", "from env")
	t.Setenv("REALTIMECTL_TO_HOUSEHOLD", "h9")
	mustCLI(t, "publish", "--notification", "from env to h9")
	t.Setenv("REALTIMECTL_PROTOCOL", "carrier-pigeon")
	if _, _, err := cli(t, "ping"); err == nil || !strings.Contains(err.Error(), "carrier-pigeon") {
		t.Fatalf("bad REALTIMECTL_PROTOCOL: %v", err)
	}
}

func TestHelp(t *testing.T) {
	out := mustCLI(t, "--help")
	for _, c := range commands {
		if !strings.Contains(out, "  "+c.name+" ") {
			t.Errorf("top-level help does not list %s", c.name)
		}
	}
	for _, c := range commands {
		for _, args := range [][]string{{c.name, "--help"}, {"help", c.name}} {
			out, _, err := cli(t, args...)
			if err != nil {
				t.Fatalf("%v: %v", args, err)
			}
			if !strings.HasPrefix(out, "realtimectl "+c.name+" — ") || !strings.Contains(out, "env: ") {
				t.Fatalf("%v printed:\n%s", args, out)
			}
			// Every flag has an environment variable.
			// Every flag has an environment variable; deprecated spellings
			// ("  --old: use --new") have none.
			if flags, envs := strings.Count(out, "\n  --")-strings.Count(out, ": use --"), strings.Count(out, "env: "); flags != envs {
				t.Fatalf("%v: %d flags, %d environment variables", args, flags, envs)
			}
		}
	}
	out = mustCLI(t, "subscribe", "--help")
	for _, want := range []string{"env: REALTIMECTL_TOKEN", "env: REALTIMECTL_ADDR", "env: REALTIMECTL_CURSOR",
		"env: REALTIMECTL_CA_FILE", "env: REALTIMECTL_INSECURE_SKIP_VERIFY", "--dev-user: use --user"} {
		if !strings.Contains(out, want) {
			t.Errorf("subscribe --help lacks %q", want)
		}
	}
	if out := mustCLI(t, "publish", "--help"); !strings.Contains(out, "env: REALTIMECTL_SERVICE_KEY") || !strings.Contains(out, "env: REALTIMECTL_TO_HOUSEHOLD") {
		t.Error("publish --help lacks REALTIMECTL_SERVICE_KEY or REALTIMECTL_TO_HOUSEHOLD")
	}
}

// TestOneNamePerThing: every command's flags are bound to REALTIMECTL_<FLAG>,
// and a flag name that several commands define means the same there: the
// same usage text (bar what one command adds in parentheses) and default.
// A new flag that reuses a name for something else fails here, since its
// variable would set both.
func TestOneNamePerThing(t *testing.T) {
	type seen struct{ cmd, text string }
	first := map[string]seen{}
	// The token command describes its own flags as the token's (not "dev
	// mode: ..."); bench keeps the peers' texts. Compare the rest.
	same := func(s string) string {
		s = strings.TrimPrefix(s, "dev mode: ")
		return s
	}
	for _, c := range commands {
		out := mustCLI(t, c.name, "--help")
		blocks := strings.Split(out, "\n  --")[1:]
		for _, b := range blocks {
			if strings.HasPrefix(b, "Deprecated") {
				continue
			}
			lines := strings.Split(b, "\n")
			name := strings.Fields(lines[0])[0]
			if name == "" || strings.HasSuffix(name, ":") {
				continue // a deprecated spelling
			}
			env := "REALTIMECTL_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
			if !slices.Contains(lines, "      env: "+env) {
				t.Errorf("%s --%s: not bound to %s:\n%s", c.name, name, env, b)
			}
			if c.name == "token" || c.name == "bench" {
				continue
			}
			var def string
			for _, l := range lines {
				if d, ok := strings.CutPrefix(strings.TrimSpace(l), "default: "); ok {
					def = d
				}
			}
			text := same(strings.TrimSpace(lines[1])) + " default=" + def
			if prev, ok := first[name]; ok && prev.text != text {
				t.Errorf("--%s means %q in %s but %q in %s", name, prev.text, prev.cmd, text, c.name)
			} else if !ok {
				first[name] = seen{c.name, text}
			}
		}
	}
}

func TestBadFlags(t *testing.T) {
	dir := t.TempDir()
	if _, err := auth.LoadOrCreateDevKey(dir); err != nil {
		t.Fatal(err)
	}
	pub := func(args ...string) []string {
		return append([]string{"publish", "--service-key", "hds_" + strings.Repeat("x", 40)}, args...)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "no command given"},
		{[]string{"nope"}, `unknown command "nope"`},
		{[]string{"token", "--data-dir", dir}, "--user is required"},
		{[]string{"token", "--user", "a", "--ttl", "48h", "--data-dir", dir}, "--ttl must be between"},
		{[]string{"token", "--user", "a b", "--data-dir", dir}, "UserID must be non-empty and without spaces"},
		{[]string{"token", "--user", "a", "extra"}, "unexpected arguments: extra"},
		{[]string{"subscribe", "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"subscribe", "--token", "t", "--protocol", "ws"}, `unknown protocol "ws"`},
		{[]string{"subscribe", "--token", "t", "--addr", "ftp://x"}, "--addr must be an http:// or https:// URL"},
		{[]string{"subscribe", "--token", "t", "--max-events", "-1"}, "--max-events must not be negative"},
		{[]string{"subscribe", "--max-events", "lots"}, `invalid value "lots" for flag -max-events`},
		{[]string{"subscribe"}, "no credential: pass --token"},
		{[]string{"subscribe", "--token", "t", "--user", "u"}, "--token and --user exclude each other"},
		{[]string{"subscribe", "--token", "t", "--dev-user", "u"}, "--token and --user exclude each other"},
		{[]string{"whoami", "--user", "u", "--ttl", "25h", "--data-dir", dir}, "--ttl must be between 1s and 24h"},
		{[]string{"whoami", "--token", "t", "--ca-file", "ca.pem"}, "--ca-file and --insecure-skip-verify need an https:// --addr"},
		{[]string{"whoami", "--token", "t", "--addr", "https://x", "--ca-file", "ca.pem", "--insecure-skip-verify"}, "exclude each other"},
		{[]string{"health", "--addr", "ftp://x"}, "--addr must be an http:// or https:// URL"},
		{[]string{"whoami"}, "no credential"},
		{pub("--notification", "x"), "give exactly one target"},
		{pub("--to-user", "u", "--to-household", "h", "--notification", "x"), "give exactly one target"},
		{pub("--to-user", "u"), "give exactly one payload"},
		{pub("--to-user", "u", "--notification", "x", "--setting", "a=b"), "give exactly one payload"},
		{pub("--to-user", "u", "--setting", "novalue"), "--setting must be key=value"},
		{pub("--to-user", "u", "--notification", "x", "--level", "loud"), "--level must be info, success, warning or error"},
		{pub("--to-user", "u", "--setting", "a=b", "--level", "error"), "--level and --title go with --notification"},
		{pub("--to-user", "u", "--json", "{nope"), "--json is not a honeydo.realtime.v1.Event"},
		{pub("--to-user", "u", "--json", "{}"), "--json has no payload"},
		{[]string{"publish", "--to-user", "u", "--notification", "x"}, "publishing needs a service credential"},
		{pub("--to-user", "u", "--notification", "x", "--dev", "--data-dir", dir), "--service-key and --dev exclude each other"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, _, err := cli(t, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			var ue *usageError
			if !errors.As(err, &ue) {
				t.Fatalf("error %v is not a usage error (exit code 2)", err)
			}
			if !strings.Contains(err.Error(), "--help' for usage") {
				t.Fatalf("error %v does not point to --help", err)
			}
		})
	}
}

// TestDeprecatedSpellings: the flags renamed for one name per thing still
// work for a release, each with a warning on stderr that names the new one.
func TestDeprecatedSpellings(t *testing.T) {
	checkGoroutines(t)
	srv := testkit.StartServer(t)
	out, stderr, err := cli(t, "whoami", "--addr", srv.URL, "--dev-user", "hank", "--dev-household", "h2", "--dev-ttl", "2m", "--data-dir", srv.DataDir)
	if err != nil || !strings.Contains(out, `"userId": "hank"`) || !strings.Contains(out, `"householdId": "h2"`) {
		t.Fatalf("whoami --dev-user: %v\n%s", err, out)
	}
	for _, want := range []string{"--dev-user is deprecated and will be removed: use --user", "--dev-household is deprecated and will be removed: use --household", "--dev-ttl is deprecated and will be removed: use --ttl"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	sub := cliBackground(t, "subscribe", "--addr", srv.URL, "--user", "hank", "--household", "h2", "--data-dir", srv.DataDir, "--max-events", "2")
	sub.waitStderr(t, "connected as hank")
	_, stderr, err = cli(t, "publish", "--addr", srv.URL, "--dev", "--data-dir", srv.DataDir, "--household", "h2", "--notification", "old target spelling")
	if err != nil || !strings.Contains(stderr, "--household is deprecated and will be removed: use --to-household") {
		t.Fatalf("publish --household: %v\n%s", err, stderr)
	}
	_, stderr, err = cli(t, "publish", "--addr", srv.URL, "--dev", "--data-dir", srv.DataDir, "--user", "hank", "--notification", "old user spelling")
	if err != nil || !strings.Contains(stderr, "--user is deprecated and will be removed: use --to-user") {
		t.Fatalf("publish --user: %v\n%s", err, stderr)
	}
	if err := sub.wait(t); err != nil {
		t.Fatal(err)
	}
	if out := sub.stdout.String(); !strings.Contains(out, "old target spelling") || !strings.Contains(out, "old user spelling") {
		t.Fatalf("subscriber printed:\n%s", out)
	}
}

// TestHealth: the credential-free probe a container's HEALTHCHECK runs:
// exit 0 with the answer while the server serves, an error when /readyz
// says not ready or nothing answers.
func TestHealth(t *testing.T) {
	checkGoroutines(t)
	srv := testkit.StartServer(t)
	if out := mustCLI(t, "health", "--addr", srv.Addr); out != srv.URL+"/healthz: ok\n" {
		t.Fatalf("health printed %q", out)
	}
	if out := mustCLI(t, "health", "--addr", srv.URL, "--ready"); out != srv.URL+"/readyz: ready\n" {
		t.Fatalf("health --ready printed %q", out)
	}
	// A closed broker: alive, not ready.
	srv.Broker.Close()
	if _, _, err := cli(t, "health", "--addr", srv.URL, "--ready"); err == nil || !strings.Contains(err.Error(), "/readyz: 503 Service Unavailable not ready") {
		t.Fatalf("health --ready with the broker closed: %v", err)
	}
	mustCLI(t, "health", "--addr", srv.URL)
	srv.Stop()
	_, _, err := cli(t, "health", "--addr", srv.URL, "--timeout", "5s")
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("health of a stopped server: %v", err)
	}
}
