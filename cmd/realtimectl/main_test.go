package main

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/honeydo/realtime/internal/testkit/poll"
	"github.com/honeydo/realtime/internal/testkit/syncbuf"
)

// cli runs realtimectl in process and returns its output.
func cli(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out, errOut syncbuf.Buffer
	err = run(ctx, args, &out, &errOut)
	return out.String(), errOut.String(), err
}

// mustCLI is cli for calls that must succeed.
func mustCLI(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := cli(t, args...)
	if err != nil {
		t.Fatalf("realtimectl %s: %v\nstderr: %s", strings.Join(args, " "), err, errOut)
	}
	return out
}

// background is a realtimectl run in a goroutine, such as subscribe.
type background struct {
	stdout, stderr syncbuf.Buffer
	cancel         context.CancelFunc
	done           chan error
	err            error
	finished       bool
}

func cliBackground(t *testing.T, args ...string) *background {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b := &background{cancel: cancel, done: make(chan error, 1)}
	go func() { b.done <- run(ctx, args, &b.stdout, &b.stderr) }()
	t.Cleanup(func() { b.stop(t) })
	return b
}

// wait waits for the command to end on its own.
func (b *background) wait(t *testing.T) error {
	t.Helper()
	if !b.finished {
		select {
		case b.err = <-b.done:
			b.finished = true
		case <-time.After(10 * time.Second):
			t.Fatalf("realtimectl did not finish; stderr:\n%s", b.stderr.String())
		}
	}
	return b.err
}

// stop interrupts the command (Ctrl-C) and waits for it.
func (b *background) stop(t *testing.T) error {
	t.Helper()
	b.cancel()
	return b.wait(t)
}

// waitStderr waits until stderr contains want.
func (b *background) waitStderr(t *testing.T, want string) {
	t.Helper()
	poll.Eventually(t, 10*time.Second, 5*time.Millisecond, func() error {
		if !strings.Contains(b.stderr.String(), want) {
			return fmt.Errorf("stderr has no %q:\n%s", want, b.stderr.String())
		}
		return nil
	})
}

// waitLines waits until stdout has n lines.
func (b *background) waitLines(t *testing.T, n int) []string {
	t.Helper()
	var lines []string
	poll.Eventually(t, 10*time.Second, 5*time.Millisecond, func() error {
		lines = strings.Split(strings.TrimSuffix(b.stdout.String(), "\n"), "\n")
		if b.stdout.String() == "" {
			lines = nil
		}
		if len(lines) < n {
			return fmt.Errorf("%d lines on stdout, want %d; stderr:\n%s", len(lines), n, b.stderr.String())
		}
		return nil
	})
	return lines
}

// checkGoroutines, called first, makes the test's last cleanup wait for the
// goroutine count to return to where it started.
func checkGoroutines(t *testing.T) {
	t.Helper()
	base := runtime.NumGoroutine()
	t.Cleanup(func() {
		// By now the server is gone, so the idle connections of the
		// client package's shared transport have closed too.
		poll.Eventually(t, 5*time.Second, 5*time.Millisecond, func() error {
			if n := runtime.NumGoroutine(); n > base {
				return fmt.Errorf("%d goroutines, %d when the test started", n, base)
			}
			return nil
		})
	})
}
