package reconnect

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"connectrpc.com/connect"

	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	"github.com/honeydo/realtime/internal/server"
)

// casesPath is the table both clients' suites run (web's
// reconnect-policy.test.ts reads the same file).
var casesPath = filepath.Join("..", "..", "..", "testdata", "reconnect", "cases.json")

type numbers struct {
	BackoffInitialMs   int64  `json:"backoffInitialMs"`
	BackoffMaxMs       int64  `json:"backoffMaxMs"`
	Jitter             string `json:"jitter"`
	ConnectTimeoutMs   int64  `json:"connectTimeoutMs"`
	DefaultHeartbeatMs int64  `json:"defaultHeartbeatMs"`
	ServerHeartbeatMs  int64  `json:"serverHeartbeatMs"`
	WatchdogFactor     int64  `json:"watchdogFactor"`
	RenewLeadMs        int64  `json:"renewLeadMs"`
	RenewRetryStepMs   int64  `json:"renewRetryStepMs"`
	RenewMinLeftMs     int64  `json:"renewMinLeftMs"`
	CallTimeoutMs      int64  `json:"callTimeoutMs"`
	MaxUnauthenticated int    `json:"maxUnauthenticated"`
}

type endingCase struct {
	Name  string `json:"name"`
	Given struct {
		End          string `json:"end"`
		Code         string `json:"code"`
		Welcomed     bool   `json:"welcomed"`
		LivedMs      int64  `json:"livedMs"`
		SentCursor   bool   `json:"sentCursor"`
		Attempt      int    `json:"attempt"`
		UnauthStreak int    `json:"unauthStreak"`
	} `json:"given"`
	Want struct {
		Action       string `json:"action"`
		Reason       string `json:"reason"`
		Attempt      int    `json:"attempt"`
		CeilingMs    int64  `json:"ceilingMs"`
		RefreshToken bool   `json:"refreshToken"`
		DropCursor   bool   `json:"dropCursor"`
		UnauthStreak int    `json:"unauthStreak"`
	} `json:"want"`
}

type welcomeCase struct {
	Name  string `json:"name"`
	Given struct {
		Resume          string `json:"resume"`
		IdentityChanged bool   `json:"identityChanged"`
		Pending         string `json:"pending"`
		First           bool   `json:"first"`
	} `json:"given"`
	Want struct {
		Resync string `json:"resync"`
	} `json:"want"`
}

type switchCase struct {
	Name  string `json:"name"`
	Given struct {
		CurrentEndsMs int64  `json:"currentEndsMs"`
		NextEndsMs    *int64 `json:"nextEndsMs"`
		Resume        string `json:"resume"`
		SameIdentity  bool   `json:"sameIdentity"`
	} `json:"given"`
	Want struct {
		Taken    bool `json:"taken"`
		Seamless bool `json:"seamless"`
	} `json:"want"`
}

type cases struct {
	About   string  `json:"about"`
	Numbers numbers `json:"numbers"`
	Backoff []struct {
		Attempt   int   `json:"attempt"`
		CeilingMs int64 `json:"ceilingMs"`
	} `json:"backoff"`
	Endings  []endingCase  `json:"endings"`
	Welcomes []welcomeCase `json:"welcomes"`
	Watchdog []struct {
		HeartbeatMs int64 `json:"heartbeatMs"`
		WatchdogMs  int64 `json:"watchdogMs"`
	} `json:"watchdog"`
	Renew []struct {
		LeftMs int64  `json:"leftMs"`
		LeadMs int64  `json:"leadMs"`
		InMs   *int64 `json:"inMs"`
	} `json:"renew"`
	RenewRetry []struct {
		LeftMs int64  `json:"leftMs"`
		Try    int    `json:"try"`
		InMs   *int64 `json:"inMs"`
	} `json:"renewRetry"`
	Switch []switchCase `json:"switch"`
}

func loadCases(t *testing.T) cases {
	t.Helper()
	raw, err := os.ReadFile(casesPath)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields() // a field this suite ignores would be a case it does not check
	var c cases
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("%s: %v", casesPath, err)
	}
	if len(c.Endings) == 0 || len(c.Welcomes) == 0 || len(c.Backoff) == 0 || len(c.Switch) == 0 {
		t.Fatalf("%s: a section is empty", casesPath)
	}
	return c
}

func ms(n int64) time.Duration { return time.Duration(n) * time.Millisecond }

var endKinds = map[string]EndKind{"error": EndError, "clean": EndClean, "stalled": EndStalled, "no-token": EndNoToken}

var actions = map[Action]string{Retry: "retry", Stop: "stop"}

var resumes = map[string]realtimev1.ResumeStatus{
	"unspecified":   realtimev1.ResumeStatus_RESUME_STATUS_UNSPECIFIED,
	"resumed":       realtimev1.ResumeStatus_RESUME_STATUS_RESUMED,
	"expired":       realtimev1.ResumeStatus_RESUME_STATUS_EXPIRED,
	"epoch-changed": realtimev1.ResumeStatus_RESUME_STATUS_EPOCH_CHANGED,
}

func resync(name string) Resync {
	if name == "none" {
		return ResyncNone
	}
	return Resync(name)
}

// TestNumbers: the contract's numbers in the table are the ones the Go
// client uses, and the server's default heartbeat is the one the clients
// assume.
func TestNumbers(t *testing.T) {
	n := loadCases(t).Numbers
	for _, c := range []struct {
		name      string
		json, got time.Duration
	}{
		{"backoffInitialMs", ms(n.BackoffInitialMs), BackoffInitial},
		{"backoffMaxMs", ms(n.BackoffMaxMs), BackoffMax},
		{"connectTimeoutMs", ms(n.ConnectTimeoutMs), ConnectTimeout},
		{"defaultHeartbeatMs", ms(n.DefaultHeartbeatMs), DefaultHeartbeat},
		{"serverHeartbeatMs (internal/server.DefaultHeartbeat)", ms(n.ServerHeartbeatMs), server.DefaultHeartbeat},
		{"renewLeadMs", ms(n.RenewLeadMs), RenewLead},
		{"renewRetryStepMs", ms(n.RenewRetryStepMs), RenewRetryStep},
		{"renewMinLeftMs", ms(n.RenewMinLeftMs), RenewMinLeft},
		{"callTimeoutMs", ms(n.CallTimeoutMs), CallTimeout},
	} {
		if c.json != c.got {
			t.Errorf("%s: cases.json says %v, Go uses %v", c.name, c.json, c.got)
		}
	}
	if n.WatchdogFactor != WatchdogFactor || n.MaxUnauthenticated != MaxUnauthenticated || n.Jitter != "full" {
		t.Errorf("watchdogFactor %d (Go %d), maxUnauthenticated %d (Go %d), jitter %q (Go full)",
			n.WatchdogFactor, WatchdogFactor, n.MaxUnauthenticated, MaxUnauthenticated, n.Jitter)
	}
	// The server's heartbeat must leave the watchdog one late heartbeat.
	if Watchdog(server.DefaultHeartbeat) != WatchdogFactor*server.DefaultHeartbeat {
		t.Errorf("watchdog for the server's heartbeat: %v", Watchdog(server.DefaultHeartbeat))
	}
}

func TestBackoffCases(t *testing.T) {
	for _, c := range loadCases(t).Backoff {
		if got := (Policy{}).BackoffCeiling(c.Attempt); got != ms(c.CeilingMs) {
			t.Errorf("attempt %d: ceiling %v, want %v", c.Attempt, got, ms(c.CeilingMs))
		}
	}
}

func TestEndingCases(t *testing.T) {
	for _, c := range loadCases(t).Endings {
		t.Run(c.Name, func(t *testing.T) {
			g := c.Given
			kind, ok := endKinds[g.End]
			if !ok {
				t.Fatalf("unknown end %q", g.End)
			}
			e := Ending{Kind: kind, Welcomed: g.Welcomed, Lived: ms(g.LivedMs), SentCursor: g.SentCursor, Attempt: g.Attempt, UnauthStreak: g.UnauthStreak}
			if kind == EndError {
				if err := e.Code.UnmarshalText([]byte(g.Code)); err != nil {
					t.Fatalf("code %q: %v", g.Code, err)
				}
			} else if g.Code != "" {
				t.Fatalf("a code on a %q ending", g.End)
			}
			d := Policy{}.AfterEnd(e)
			w := c.Want
			got := [...]any{actions[d.Action], string(d.Reason), d.Attempt, d.Ceiling, d.RefreshToken, d.DropCursor, d.UnauthStreak}
			want := [...]any{w.Action, w.Reason, w.Attempt, ms(w.CeilingMs), w.RefreshToken, w.DropCursor, w.UnauthStreak}
			if got != want {
				t.Errorf("got  action, reason, attempt, ceiling, refresh, drop, streak = %v\nwant %v", got, want)
			}
		})
	}
}

func TestWelcomeCases(t *testing.T) {
	for _, c := range loadCases(t).Welcomes {
		t.Run(c.Name, func(t *testing.T) {
			r, ok := resumes[c.Given.Resume]
			if !ok {
				t.Fatalf("unknown resume %q", c.Given.Resume)
			}
			got := AfterWelcome(Welcome{Resume: r, IdentityChanged: c.Given.IdentityChanged, Pending: resync(c.Given.Pending), First: c.Given.First})
			if want := resync(c.Want.Resync); got != want {
				t.Errorf("resync %q, want %q", got, want)
			}
		})
	}
}

func TestTimerCases(t *testing.T) {
	c := loadCases(t)
	for _, w := range c.Watchdog {
		if got := Watchdog(ms(w.HeartbeatMs)); got != ms(w.WatchdogMs) {
			t.Errorf("watchdog for heartbeat %dms: %v, want %dms", w.HeartbeatMs, got, w.WatchdogMs)
		}
	}
	check := func(what string, got time.Duration, ok bool, want *int64) {
		t.Helper()
		switch {
		case want == nil && ok:
			t.Errorf("%s: %v, want none", what, got)
		case want != nil && (!ok || got != ms(*want)):
			t.Errorf("%s: %v (%v), want %dms", what, got, ok, *want)
		}
	}
	for _, r := range c.Renew {
		got, ok := RenewIn(ms(r.LeftMs), ms(r.LeadMs))
		check("renew with "+ms(r.LeftMs).String()+" left", got, ok, r.InMs)
	}
	for _, r := range c.RenewRetry {
		got, ok := RenewRetryIn(ms(r.LeftMs), r.Try)
		check("renew retry with "+ms(r.LeftMs).String()+" left", got, ok, r.InMs)
	}
	for _, s := range c.Switch {
		now := time.Now()
		var next *time.Time
		if s.Given.NextEndsMs != nil {
			n := now.Add(ms(*s.Given.NextEndsMs))
			next = &n
		}
		taken := RenewalTaken(now.Add(ms(s.Given.CurrentEndsMs)), next)
		seamless := Seamless(resumes[s.Given.Resume], s.Given.SameIdentity)
		if taken != s.Want.Taken || seamless != s.Want.Seamless {
			t.Errorf("%s: taken %v seamless %v, want %v %v", s.Name, taken, seamless, s.Want.Taken, s.Want.Seamless)
		}
	}
}

// TestEveryCodeDecided: every Connect code has a decision, and only the
// documented ones stop.
func TestEveryCodeDecided(t *testing.T) {
	stops := map[connect.Code]bool{
		connect.CodePermissionDenied: true, connect.CodeUnimplemented: true, connect.CodeFailedPrecondition: true,
		connect.CodeNotFound: true, connect.CodeInvalidArgument: true,
	}
	for code := connect.CodeCanceled; code <= connect.CodeUnauthenticated; code++ {
		d := Policy{}.AfterEnd(Ending{Kind: EndError, Code: code})
		if (d.Action == Stop) != stops[code] {
			t.Errorf("%v: %v", code, actions[d.Action])
		}
	}
}
