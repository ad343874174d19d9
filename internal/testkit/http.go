package testkit

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
)

// HTTPClient returns a client that speaks only HTTP/1.1, or only h2c
// (HTTP/2 without TLS) when h2c is set, and keeps up to 64 idle connections
// per host. Its idle connections are closed when the test ends. The
// Transport is an *http.Transport that the caller may adjust (a dialer, say)
// before the first request.
func HTTPClient(t testing.TB, h2c bool) *http.Client {
	t.Helper()
	p := new(http.Protocols)
	if h2c {
		p.SetUnencryptedHTTP2(true)
	} else {
		p.SetHTTP1(true)
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 64, Protocols: p}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// SharedH2C is an h2c client whose one connection is open before the test
// starts many streams through it, and which counts its dials.
//
// A cold h2c Transport asked for many requests at once dials a connection
// per request until the first one's SETTINGS arrive (hundreds for a burst
// of a thousand streams); on a busy machine the server then drops some of
// them before their SETTINGS, failing every stream on them. One request
// made first leaves one connection that every later stream shares.
type SharedH2C struct {
	*http.Client
	dials atomic.Int64
}

// NewSharedH2C returns an h2c client that has completed one request to
// baseURL (any path answers over HTTP/2; the status does not matter).
func NewSharedH2C(t testing.TB, baseURL string) *SharedH2C {
	t.Helper()
	c := &SharedH2C{Client: HTTPClient(t, true)}
	tr := c.Transport.(*http.Transport)
	var d net.Dialer
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c.dials.Add(1)
		return d.DialContext(ctx, network, addr)
	}
	res, err := c.Get(baseURL + "/")
	if err != nil {
		t.Fatalf("warming the h2c connection: %v", err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.ProtoMajor != 2 {
		t.Fatalf("warming the h2c connection: the server answered with %s", res.Proto)
	}
	return c
}

// Dials reports how many connections the client has dialled.
func (c *SharedH2C) Dials() int64 { return c.dials.Load() }
