package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/honeydo/realtime/client"
	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	"github.com/honeydo/realtime/internal/clienttls"
)

const subscribeSynopsis = `realtimectl subscribe — follow the event stream as JSON lines.

Usage:
  realtimectl subscribe [--addr URL] [--ca-file ca.pem] --token T [--cursor C] [--protocol P]
  realtimectl subscribe [--addr URL] --user U [--household H] [--data-dir .data]

Prints each event as one line of JSON (protobuf's JSON mapping) on stdout;
says on stderr when it connected, reconnected, whether the resume
succeeded, and when events may have been missed (resync). Like the browser
client it reconnects with backoff (1s doubling to 5s, jittered), asks for
a fresh token each time (--user mints one in dev mode; a --token is reused, so the
stream ends once it expires), renews the stream with a fresh token before
the server would end it, resumes from the cursor of the last event it
printed, and declares the connection dead after two heartbeat intervals of
silence (8 s with the server's default heartbeat). Stop it with Ctrl-C; it prints the cursor to resume from.
`

func runSubscribe(ctx context.Context, std *stdio, args []string) error {
	var (
		srv       serverFlags
		creds     credFlags
		cursor    string
		maxEvents int
	)
	fs := newFlagSet(std, "subscribe", subscribeSynopsis)
	srv.register(fs)
	creds.register(fs)
	fs.StringVar(&cursor, "cursor", "", "resume after this `cursor` (an event's cursor from an earlier run); default: live events only")
	fs.IntVar(&maxEvents, "max-events", 0, "exit after printing this many events (0: run until interrupted)")
	if err := fs.parse(args); err != nil {
		return helpOK(err)
	}
	if maxEvents < 0 {
		return usagef("subscribe", "--max-events must not be negative")
	}
	opts, closeIdle, err := srv.options(fs)
	if err != nil {
		return err
	}
	defer closeIdle()
	if opts.Token, err = creds.source(fs); err != nil {
		return err
	}
	opts.Cursor = cursor

	// A certificate the command does not trust will not become trusted by
	// retrying: stop at the first one instead of reconnecting forever.
	ctx, stopOnCert := context.WithCancelCause(ctx)
	defer stopOnCert(nil)
	r := &subscribeReporter{std: std, cursor: cursor, staticToken: creds.user == ""}
	opts.OnStatus = func(st client.Status) {
		if st.State == client.StateReconnecting && clienttls.IsCertificateError(st.Err) {
			stopOnCert(clienttls.Explain(st.Err))
			return
		}
		r.status(st)
	}
	fmt.Fprintf(std.stderr, "connecting to %s (%s)\n", opts.BaseURL, opts.Protocol)
	printed := 0
	errEnough := errors.New("enough events")
	err = client.Subscribe(ctx, opts, func(_ context.Context, ev *realtimev1.Event) error {
		line, err := jsonLine(ev)
		if err != nil {
			return err
		}
		if _, err := std.stdout.Write(line); err != nil {
			return err
		}
		r.cursor = ev.GetCursor()
		printed++
		if maxEvents > 0 && printed >= maxEvents {
			return errEnough
		}
		return nil
	})
	if r.cursor != "" {
		plural := "s"
		if printed == 1 {
			plural = ""
		}
		fmt.Fprintf(std.stderr, "stopped after %d event%s; resume with --cursor %s\n", printed, plural, r.cursor)
	}
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return cause // a certificate error
	}
	if errors.Is(err, errEnough) || errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil
	}
	if connect.CodeOf(err) == connect.CodeUnauthenticated && creds.user == "" {
		return fmt.Errorf("%w\n(a --token is reused on every reconnection: once it expires, get a fresh one, or use --user in dev mode)", err)
	}
	return clienttls.Explain(err)
}

// subscribeReporter tells the person at the terminal what the stream is
// doing. It runs on the Subscribe goroutine, as do the handler's writes.
type subscribeReporter struct {
	std    *stdio
	cursor string
	// staticToken is set when every connection reuses one --token, which
	// ends the stream for good once it expires.
	staticToken bool
}

func (r *subscribeReporter) status(st client.Status) {
	w := r.std.stderr
	switch st.State {
	case client.StateConnected:
		r.cursor = st.Cursor
		who := st.Welcome.GetUserId()
		if h := st.Welcome.GetHouseholdId(); h != "" {
			who += " in household " + h
		}
		expires := ""
		if e := st.Welcome.GetExpireTime(); e != nil && r.staticToken && !st.Reconnected {
			expires = fmt.Sprintf("; the token expires, and the stream ends, in %v (expiry + grace)", time.Until(e.AsTime()).Round(time.Second))
		}
		switch {
		case !st.Reconnected && st.Resumed:
			fmt.Fprintf(w, "connected as %s (rooms %s): resumed after cursor %s, nothing missed%s\n", who, strings.Join(st.Welcome.GetRooms(), ", "), st.Cursor, expires)
		case !st.Reconnected:
			fmt.Fprintf(w, "connected as %s (rooms %s): live from cursor %s%s\n", who, strings.Join(st.Welcome.GetRooms(), ", "), st.Cursor, expires)
		case st.Resumed:
			fmt.Fprintf(w, "reconnected: resumed after cursor %s, nothing missed%s\n", st.Cursor, expires)
		default:
			fmt.Fprintf(w, "reconnected: could not resume; live from cursor %s%s\n", st.Cursor, expires)
		}
	case client.StateReconnecting:
		fmt.Fprintf(w, "disconnected: %v; reconnecting in %v (attempt %d)\n", describeErr(st.Err), st.Delay.Round(time.Millisecond), st.Attempt)
	case client.StateResync:
		fmt.Fprintf(w, "resync: events may have been missed (%v): refetch your state\n", st.Reason)
	}
}

// describeErr keeps a stream's end short: "unavailable: server is shutting
// down…".
func describeErr(err error) string {
	if err == nil {
		return "the server ended the stream"
	}
	return err.Error()
}

// jsonLine renders m as one line of compact protobuf JSON.
func jsonLine(m proto.Message) ([]byte, error) {
	b, err := protojson.Marshal(m)
	if err != nil {
		return nil, err
	}
	// protojson varies its whitespace on purpose; compact it so that lines
	// are stable for diffs and scripts.
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return nil, err
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}
