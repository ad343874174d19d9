package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/honeydo/realtime/client"
	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	"github.com/honeydo/realtime/gen/honeydo/realtime/v1/realtimev1connect"
	"github.com/honeydo/realtime/internal/clienttls"
)

const pingSynopsis = `realtimectl ping — check that the server answers an authenticated call.

Usage:
  realtimectl ping [--addr URL] [--ca-file ca.pem] (--token T | --user U)

Calls Ping and prints the server's clock and the round-trip time.
`

const whoamiSynopsis = `realtimectl whoami — show who the server thinks a token belongs to.

Usage:
  realtimectl whoami [--addr URL] [--ca-file ca.pem] (--token T | --user U)

Calls WhoAmI and prints the answer as JSON: user, session, household, the
rooms a stream joins, and when the token expires. --token also takes a
service key.
`

// unaryFlags are the flags of a unary call made with a person's or a
// service's credential.
type unaryFlags struct {
	srv     serverFlags
	creds   credFlags
	timeout time.Duration
}

// setup parses the flags and returns the client, the server's URL and a
// context with the call's timeout; cancel ends the context and releases
// the client's connections.
func (u *unaryFlags) setup(ctx context.Context, std *stdio, cmd, synopsis string, args []string) (context.Context, context.CancelFunc, realtimev1connect.RealtimeServiceClient, string, error) {
	fs := newFlagSet(std, cmd, synopsis)
	u.srv.register(fs)
	u.creds.register(fs)
	registerTimeout(fs, &u.timeout)
	if err := fs.parse(args); err != nil {
		return nil, nil, nil, "", err
	}
	opts, closeIdle, err := u.srv.options(fs)
	if err != nil {
		return nil, nil, nil, "", err
	}
	if opts.Token, err = u.creds.source(fs); err != nil {
		closeIdle()
		return nil, nil, nil, "", err
	}
	rt, err := client.NewRealtimeClient(opts)
	if err != nil {
		closeIdle()
		return nil, nil, nil, "", err
	}
	ctx, cancelCtx := context.WithTimeout(ctx, u.timeout)
	cancel := func() {
		cancelCtx()
		closeIdle()
	}
	return ctx, cancel, rt, opts.BaseURL, nil
}

// registerTimeout defines --timeout, the same in every command that makes
// one call.
func registerTimeout(fs *flagSet, timeout *time.Duration) {
	fs.DurationVar(timeout, "timeout", 10*time.Second, "give up on the call after this long")
}

func runPing(ctx context.Context, std *stdio, args []string) error {
	var u unaryFlags
	ctx, cancel, rt, url, err := u.setup(ctx, std, "ping", pingSynopsis, args)
	if err != nil {
		return helpOK(err)
	}
	defer cancel()
	began := time.Now()
	res, err := rt.Ping(ctx, connect.NewRequest(&realtimev1.PingRequest{}))
	if err != nil {
		return clienttls.Explain(err)
	}
	rtt := time.Since(began)
	_, err = fmt.Fprintf(std.stdout, "pong from %s: server time %s, round trip %v\n",
		url, res.Msg.GetTime().AsTime().Format(time.RFC3339Nano), rtt.Round(time.Microsecond))
	return err
}

func runWhoAmI(ctx context.Context, std *stdio, args []string) error {
	var u unaryFlags
	ctx, cancel, rt, _, err := u.setup(ctx, std, "whoami", whoamiSynopsis, args)
	if err != nil {
		return helpOK(err)
	}
	defer cancel()
	res, err := rt.WhoAmI(ctx, connect.NewRequest(&realtimev1.WhoAmIRequest{}))
	if err != nil {
		return clienttls.Explain(err)
	}
	b, err := protojson.Marshal(res.Msg)
	if err != nil {
		return err
	}
	// protojson varies its whitespace on purpose; indent it ourselves so
	// that the output is stable.
	var buf bytes.Buffer
	if err := json.Indent(&buf, b, "", "  "); err != nil {
		return err
	}
	buf.WriteByte('\n')
	_, err = std.stdout.Write(buf.Bytes())
	return err
}
