package reconnect

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the generated tables of docs/RECONNECT.md from testdata/reconnect/cases.json")

var docPath = filepath.Join("..", "..", "..", "docs", "RECONNECT.md")

// TestDocNumbers: the numbers table of docs/RECONNECT.md says what
// cases.json says, every number once.
func TestDocNumbers(t *testing.T) {
	doc, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	section := between(t, doc, "numbers")
	row := regexp.MustCompile("(?m)^\\| `([A-Za-z]+)` \\| `([^`]+)` \\|")
	got := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(string(section), -1) {
		if _, dup := got[m[1]]; dup {
			t.Errorf("docs: %s listed twice", m[1])
		}
		got[m[1]] = m[2]
	}
	n := loadCases(t).Numbers
	want := map[string]string{
		"backoffInitialMs":   strconv.FormatInt(n.BackoffInitialMs, 10),
		"backoffMaxMs":       strconv.FormatInt(n.BackoffMaxMs, 10),
		"jitter":             n.Jitter,
		"connectTimeoutMs":   strconv.FormatInt(n.ConnectTimeoutMs, 10),
		"defaultHeartbeatMs": strconv.FormatInt(n.DefaultHeartbeatMs, 10),
		"serverHeartbeatMs":  strconv.FormatInt(n.ServerHeartbeatMs, 10),
		"watchdogFactor":     strconv.FormatInt(n.WatchdogFactor, 10),
		"renewLeadMs":        strconv.FormatInt(n.RenewLeadMs, 10),
		"renewRetryStepMs":   strconv.FormatInt(n.RenewRetryStepMs, 10),
		"renewMinLeftMs":     strconv.FormatInt(n.RenewMinLeftMs, 10),
		"callTimeoutMs":      strconv.FormatInt(n.CallTimeoutMs, 10),
		"maxUnauthenticated": strconv.Itoa(n.MaxUnauthenticated),
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("docs/RECONNECT.md: %s is %q, cases.json says %q", k, got[k], v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("docs/RECONNECT.md lists %s, which cases.json does not have", k)
		}
	}
}

// TestDocCases: the tables of cases in docs/RECONNECT.md are cases.json's,
// rendered; `go test ./client/internal/reconnect -run TestDocCases -update`
// rewrites them.
func TestDocCases(t *testing.T) {
	doc, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	c := loadCases(t)
	rendered := renderCases(c)
	if *update {
		begin, end := markers("cases")
		i, j := bytes.Index(doc, []byte(begin)), bytes.Index(doc, []byte(end))
		if i < 0 || j < i {
			t.Fatalf("docs/RECONNECT.md has no %s … %s", begin, end)
		}
		out := append(append(append([]byte{}, doc[:i+len(begin)]...), "\n"+rendered...), doc[j:]...)
		if err := os.WriteFile(docPath, out, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if got := strings.TrimSpace(string(between(t, doc, "cases"))); got != strings.TrimSpace(rendered) {
		t.Errorf("docs/RECONNECT.md's tables of cases are not cases.json's: run\n\tgo test ./client/internal/reconnect -run TestDocCases -update")
	}
}

func markers(name string) (string, string) {
	return "<!-- " + name + ":begin -->", "<!-- " + name + ":end -->"
}

func between(t *testing.T, doc []byte, name string) []byte {
	t.Helper()
	begin, end := markers(name)
	i, j := bytes.Index(doc, []byte(begin)), bytes.Index(doc, []byte(end))
	if i < 0 || j < i {
		t.Fatalf("docs/RECONNECT.md has no %s … %s", begin, end)
	}
	return doc[i+len(begin) : j]
}

func renderCases(c cases) string {
	var b strings.Builder
	b.WriteString("When a stream ends (counters before → after; a delay \"0–N s\" is drawn uniformly):\n\n")
	b.WriteString("| situation | ending | welcomed | attempt, unauth streak | action |\n| --- | --- | --- | --- | --- |\n")
	for _, e := range c.Endings {
		g, w := e.Given, e.Want
		end := g.End
		if g.End == "error" {
			end = "`" + strings.ToUpper(g.Code) + "`"
		}
		if g.SentCursor {
			end += ", cursor sent"
		}
		welcomed := "no"
		if g.Welcomed {
			welcomed = "lived " + ms(g.LivedMs).String()
		}
		var act string
		if w.Action == "stop" {
			act = fmt.Sprintf("**stop** (%s)", w.Reason)
		} else {
			delay := "at once"
			if w.CeilingMs > 0 {
				delay = "after 0–" + ms(w.CeilingMs).String()
			}
			act = fmt.Sprintf("**retry** #%d %s (%s)", w.Attempt, delay, w.Reason)
			if w.RefreshToken {
				act += ", fresh token"
			}
			if w.DropCursor {
				act += ", cursor dropped"
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %d, %d → %d | %s |\n", e.Name, end, welcomed, g.Attempt, g.UnauthStreak, w.UnauthStreak, act)
	}
	b.WriteString("\nAt a welcome:\n\n")
	b.WriteString("| situation | resume | identity changed | owed | first | resync |\n| --- | --- | --- | --- | --- | --- |\n")
	yes := map[bool]string{true: "yes", false: "no"}
	for _, w := range c.Welcomes {
		g := w.Given
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | **%s** |\n", w.Name, g.Resume, yes[g.IdentityChanged], g.Pending, yes[g.First], w.Want.Resync)
	}
	b.WriteString("\nSwitching to a renewed stream (expiry in from now):\n\n")
	b.WriteString("| situation | current ends | next ends | resume | same identity | taken | seamless |\n| --- | --- | --- | --- | --- | --- | --- |\n")
	for _, s := range c.Switch {
		g := s.Given
		next := "never"
		if g.NextEndsMs != nil {
			next = ms(*g.NextEndsMs).String()
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", s.Name, ms(g.CurrentEndsMs), next, g.Resume, yes[g.SameIdentity], yes[s.Want.Taken], yes[s.Want.Seamless])
	}
	return b.String()
}
