package testkit

import (
	"net/http"
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
