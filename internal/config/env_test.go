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

// TestDeprecated: an old spelling sets the flag with a warning, has no
// environment variable of its own, keeps the flag's variable from
// overriding it, and is listed apart in the usage.
func TestDeprecated(t *testing.T) {
	t.Setenv("APP_ADDR", "from-env")
	t.Setenv("APP_URL", "old-env-ignored")
	t.Setenv("APP_H2C", "false")
	newFS := func() (*flag.FlagSet, *string, *bool, *bytes.Buffer) {
		var warn bytes.Buffer
		fs := flag.NewFlagSet("app", flag.ContinueOnError)
		addr := fs.String("addr", "default", "server `URL`")
		h2c := fs.Bool("h2c", false, "")
		Deprecated(fs, "url", "addr", &warn)
		Deprecated(fs, "cleartext-http2", "h2c", &warn)
		return fs, addr, h2c, &warn
	}

	fs, addr, h2c, warn := newFS()
	if err := fs.Parse([]string{"--url", "from-flag", "--cleartext-http2"}); err != nil {
		t.Fatal(err)
	}
	if err := ApplyEnv(fs, "APP_", nil); err != nil {
		t.Fatal(err)
	}
	if *addr != "from-flag" || !*h2c {
		t.Fatalf("addr %q h2c %v: the deprecated spellings did not win over the environment", *addr, *h2c)
	}
	for _, want := range []string{"--url is deprecated and will be removed: use --addr", "--cleartext-http2 is deprecated and will be removed: use --h2c"} {
		if !strings.Contains(warn.String(), want) {
			t.Errorf("warnings lack %q:\n%s", want, warn.String())
		}
	}
	if g := Given(fs); !g["addr"] || !g["h2c"] || g["url"] {
		t.Errorf("Given = %v, want the flags the spellings stand for", g)
	}

	fs, addr, _, warn = newFS()
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if err := ApplyEnv(fs, "APP_", nil); err != nil {
		t.Fatal(err)
	}
	if *addr != "from-env" || warn.Len() != 0 {
		t.Fatalf("addr %q, warnings %q: want APP_ADDR and no warning", *addr, warn.String())
	}

	var out bytes.Buffer
	fs.SetOutput(&out)
	Usage(fs, "usage: app\n", "APP_", nil)()
	if strings.Contains(out.String(), "APP_URL") || strings.Contains(out.String(), "\n  --url\n") {
		t.Errorf("usage lists the deprecated spelling as a flag:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "Deprecated spellings") || !strings.Contains(out.String(), "  --url: use --addr") {
		t.Errorf("usage lacks the deprecated spellings:\n%s", out.String())
	}
}

func TestServerURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:8080":   "http://127.0.0.1:8080",
		"https://rt.example/":     "https://rt.example",
		"127.0.0.1:8080":          "http://127.0.0.1:8080",
		":8080":                   "http://127.0.0.1:8080",
		" realtime.internal:443 ": "http://realtime.internal:443",
		"ftp://x":                 "error",
		"":                        "error",
	} {
		got, err := ServerURL(in)
		if err != nil {
			got = "error"
		}
		if got != want {
			t.Errorf("ServerURL(%q) = %q (%v), want %q", in, got, err, want)
		}
	}
}
