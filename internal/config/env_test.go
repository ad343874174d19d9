package config

import (
	"bytes"
	"flag"
	"strings"
	"testing"
)

func TestApplyEnv(t *testing.T) {
	t.Setenv("APP_LISTEN_ADDR", "from-env:1")
	t.Setenv("APP_VERBOSE", "true")
	t.Setenv("SECRET", "s3cret")
	t.Setenv("APP_GIVEN", "env-loses")
	overrides := map[string]string{"secret-key": "SECRET"}
	fs := flag.NewFlagSet("app", flag.ContinueOnError)
	addr := fs.String("listen-addr", "default", "")
	verbose := fs.Bool("verbose", false, "")
	secret := fs.String("secret-key", "", "")
	given := fs.String("given", "", "")
	untouched := fs.String("untouched", "keep", "")
	if err := fs.Parse([]string{"--given", "flag-wins"}); err != nil {
		t.Fatal(err)
	}
	if err := ApplyEnv(fs, "APP_", overrides); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct{ got, want string }{
		"listen-addr": {*addr, "from-env:1"},
		"secret-key":  {*secret, "s3cret"},
		"given":       {*given, "flag-wins"},
		"untouched":   {*untouched, "keep"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", name, c.got, c.want)
		}
	}
	if !*verbose {
		t.Error("verbose not set from env")
	}
}

func TestApplyEnvBadValue(t *testing.T) {
	t.Setenv("APP_N", "not-a-number")
	fs := flag.NewFlagSet("app", flag.ContinueOnError)
	fs.Int("n", 1, "")
	_ = fs.Parse(nil)
	err := ApplyEnv(fs, "APP_", nil)
	if err == nil || !strings.Contains(err.Error(), "APP_N") {
		t.Fatalf("err = %v, want one naming APP_N", err)
	}
}

func TestUsageListsEnv(t *testing.T) {
	fs := flag.NewFlagSet("app", flag.ContinueOnError)
	var out bytes.Buffer
	fs.SetOutput(&out)
	fs.Duration("heartbeat", 0, "idle `interval`")
	fs.String("clerk-secret-key", "", "key")
	Usage(fs, "usage: app\n", "APP_", map[string]string{"clerk-secret-key": "CLERK_SECRET_KEY"})()
	for _, want := range []string{"--heartbeat interval", "env: APP_HEARTBEAT", "env: CLERK_SECRET_KEY"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("usage lacks %q:\n%s", want, out.String())
		}
	}
}

func TestStringList(t *testing.T) {
	var l StringList
	_ = l.Set(" a, b ,,c ")
	if l.String() != "a,b,c" {
		t.Fatalf("got %q", l.String())
	}
}
