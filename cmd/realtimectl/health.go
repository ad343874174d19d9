package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/honeydo/realtime/internal/clienttls"
)

const healthSynopsis = `realtimectl health — probe realtimed's /healthz (or /readyz) and exit 0 if it answers 200.

Usage:
  realtimectl health [--addr URL] [--ready] [--timeout 10s] [--ca-file ca.pem]

The probe of a container image that has no curl (deploy/Dockerfile's
HEALTHCHECK): it needs no credential. It prints the server's answer, e.g.
"ok", and exits 1 when the server answers anything but 200 or does not
answer within --timeout.
`

func runHealth(ctx context.Context, std *stdio, args []string) error {
	var (
		srv     serverFlags
		ready   bool
		timeout time.Duration
	)
	fs := newFlagSet(std, "health", healthSynopsis)
	srv.registerAddr(fs)
	fs.BoolVar(&ready, "ready", false, "probe /readyz (can this node serve streams?) instead of /healthz (is the process serving?)")
	registerTimeout(fs, &timeout)
	if err := fs.parse(args); err != nil {
		return helpOK(err)
	}
	base, hc, err := srv.httpClient(fs)
	if err != nil {
		return err
	}
	if hc == nil {
		hc = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	defer hc.CloseIdleConnections()
	hc.Timeout = timeout
	path := "/healthz"
	if ready {
		path = "/readyz"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return err
	}
	res, err := hc.Do(req)
	if err != nil {
		return clienttls.Explain(err)
	}
	defer res.Body.Close()
	// The probes answer a word or a short reason; read no more than that.
	body, err := io.ReadAll(io.LimitReader(res.Body, 1024))
	if err != nil {
		return err
	}
	answer := strings.TrimSpace(string(body))
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("%s%s: %s %s", base, path, res.Status, answer)
	}
	_, err = fmt.Fprintf(std.stdout, "%s%s: %s\n", base, path, answer)
	return err
}
