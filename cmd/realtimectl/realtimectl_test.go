package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
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
	_, _, err = cli(t, "subscribe", "--dev-user", "alice", "--data-dir", dir)
	if err == nil || !strings.Contains(err.Error(), "start realtimed --dev first") {
		t.Fatalf("subscribe error %v", err)
	}
}

func TestPing(t *testing.T) {
	checkGoroutines(t)
	srv := testkit.StartServer(t)
	out := mustCLI(t, "ping", "--addr", strings.TrimPrefix(srv.URL, "http://"), "--dev-user", "alice", "--data-dir", srv.DataDir)
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
	sub := cliBackground(t, "subscribe", "--addr", srv.URL, "--dev-user", "bob", "--dev-household", "home",
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
	publish("--household", "home", "--except", "bob", "--notification", "not for bob")
	publish("--household", "other", "--notification", "another household")
	hello := publish("--household", "home", "--notification", "hello", "--level", "success", "--title", "Hi", "--sender", "alice", "--origin", "alice-tab-7")
	setting := publish("--user", "bob", "--setting", "theme=dark")
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
			mustCLI(t, "publish", "--addr", srv.URL, "--service-key", srv.Key.ServiceKey(), "--protocol", protocol, "--user", "carol", "--notification", protocol)
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
	common := []string{"--addr", srv.URL, "--dev-user", "dave", "--data-dir", srv.DataDir}
	sub := cliBackground(t, append([]string{"subscribe", "--max-events", "1"}, common...)...)
	sub.waitStderr(t, "connected as dave")
	first := mustCLI(t, "publish", "--addr", srv.URL, "--dev", "--data-dir", srv.DataDir, "--user", "dave", "--notification", "first")
	if err := sub.wait(t); err != nil {
		t.Fatal(err)
	}
	var res realtimev1.PublishResponse
	if err := protojson.Unmarshal([]byte(first), &res); err != nil {
		t.Fatal(err)
	}
	for _, msg := range []string{"second", "third"} {
		mustCLI(t, "publish", "--addr", srv.URL, "--dev", "--data-dir", srv.DataDir, "--user", "dave", "--notification", msg)
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
	sub := cliBackground(t, "subscribe", "--addr", srv.URL, "--dev-user", "erin", "--data-dir", srv.DataDir)
	sub.waitStderr(t, "connected as erin")

	srv.Restart(false) // history kept: resume
	sub.waitStderr(t, "disconnected: unavailable: server is shutting down")
	sub.waitStderr(t, "reconnected: resumed after cursor")

	srv.Restart(true) // history lost: resync
	sub.waitStderr(t, "reconnected: could not resume")
	sub.waitStderr(t, "resync: events may have been missed (epoch changed")

	mustCLI(t, "publish", "--addr", srv.URL, "--dev", "--data-dir", srv.DataDir, "--user", "erin", "--notification", "after")
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
	t.Setenv("REALTIME_ADDR", srv.URL)
	t.Setenv("REALTIME_DATA_DIR", srv.DataDir)
	t.Setenv("REALTIMECTL_TOKEN_USER", "frank")
	t.Setenv("REALTIMECTL_TOKEN_HOUSEHOLD", "h9")
	token := strings.TrimSpace(mustCLI(t, "token"))
	t.Setenv("REALTIME_TOKEN", token)
	if out := mustCLI(t, "whoami"); !strings.Contains(out, `"userId": "frank"`) || !strings.Contains(out, `"householdId": "h9"`) {
		t.Fatalf("whoami from the environment: %s", out)
	}
	// --dev-user on the command line beats REALTIME_TOKEN.
	if out := mustCLI(t, "whoami", "--dev-user", "gina"); !strings.Contains(out, `"userId": "gina"`) {
		t.Fatalf("whoami --dev-user: %s", out)
	}
	t.Setenv("REALTIME_SERVICE_KEY", srv.Key.ServiceKey())
	mustCLI(t, "publish", "--broadcast", "--notification", "from env")
	t.Setenv("REALTIME_PROTOCOL", "carrier-pigeon")
	if _, _, err := cli(t, "ping"); err == nil || !strings.Contains(err.Error(), "carrier-pigeon") {
		t.Fatalf("bad REALTIME_PROTOCOL: %v", err)
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
			if flags, envs := strings.Count(out, "\n  --"), strings.Count(out, "env: "); flags != envs {
				t.Fatalf("%v: %d flags, %d environment variables", args, flags, envs)
			}
		}
	}
	out = mustCLI(t, "subscribe", "--help")
	for _, want := range []string{"env: REALTIME_TOKEN", "env: REALTIME_ADDR", "env: REALTIMECTL_SUBSCRIBE_CURSOR"} {
		if !strings.Contains(out, want) {
			t.Errorf("subscribe --help lacks %q", want)
		}
	}
	if out := mustCLI(t, "publish", "--help"); !strings.Contains(out, "env: REALTIME_SERVICE_KEY") {
		t.Error("publish --help lacks REALTIME_SERVICE_KEY")
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
		{[]string{"subscribe", "--token", "t", "--dev-user", "u"}, "--token and --dev-user exclude each other"},
		{[]string{"whoami"}, "no credential"},
		{pub("--notification", "x"), "give exactly one target"},
		{pub("--user", "u", "--household", "h", "--notification", "x"), "give exactly one target"},
		{pub("--user", "u"), "give exactly one payload"},
		{pub("--user", "u", "--notification", "x", "--setting", "a=b"), "give exactly one payload"},
		{pub("--user", "u", "--setting", "novalue"), "--setting must be key=value"},
		{pub("--user", "u", "--notification", "x", "--level", "loud"), "--level must be info, success, warning or error"},
		{pub("--user", "u", "--setting", "a=b", "--level", "error"), "--level and --title go with --notification"},
		{pub("--user", "u", "--json", "{nope"), "--json is not a honeydo.realtime.v1.Event"},
		{pub("--user", "u", "--json", "{}"), "--json has no payload"},
		{[]string{"publish", "--user", "u", "--notification", "x"}, "publishing needs a service credential"},
		{pub("--user", "u", "--notification", "x", "--dev", "--data-dir", dir), "--service-key and --dev exclude each other"},
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
