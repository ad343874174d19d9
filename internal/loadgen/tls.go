package loadgen

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// setupTLS prepares a run against an https:// server: the control client
// (tokens, bench API) and the transport that gives every subscriber a TLS
// connection of its own, both with the TLS configuration of --ca-file or
// --insecure-skip-verify.
func (r *run) setupTLS() error {
	cfg, err := r.cfg.tls.Config(r.baseURL, r.stderr)
	if err != nil {
		return err
	}
	control := http.DefaultTransport.(*http.Transport).Clone()
	control.TLSClientConfig = cfg.Clone()
	control.ForceAttemptHTTP2 = true // a custom TLS config turns HTTP/2 off unless asked
	r.control = &http.Client{Transport: control}

	// The subscribers' side offers HTTP/2 only, as a browser that has it
	// would settle on; the handshake fails if the server does not agree.
	sub := cfg.Clone()
	sub.NextProtos = []string{"h2"}
	if sub.ServerName == "" {
		host, _, err := net.SplitHostPort(r.hostport)
		if err != nil {
			return err
		}
		sub.ServerName = host // an IP address is checked against the certificate's IP addresses
	}
	p := new(http.Protocols)
	p.SetHTTP2(true)
	dialer := &net.Dialer{}
	r.tlsTransport = &http.Transport{
		Protocols:          p,
		ForceAttemptHTTP2:  true,
		DisableCompression: true,
		// The handshake is done here rather than by the transport so that
		// every connection the subscribers get is counted, and known to
		// speak HTTP/2, before a request goes out on it.
		DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			raw, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			conn := tls.Client(raw, sub)
			if err := conn.HandshakeContext(ctx); err != nil {
				raw.Close()
				return nil, err
			}
			if p := conn.ConnectionState().NegotiatedProtocol; p != "h2" {
				conn.Close()
				return nil, fmt.Errorf("TLS: the server did not negotiate HTTP/2 by ALPN (got %q)", p)
			}
			r.tlsConns.Add(1)
			return conn, nil
		},
	}
	return nil
}

// openTLS opens a stream on a new TLS connection of its own, as a browser
// tab does that talks to realtimed's origin alone: NewClientConn dials a
// fresh connection every time and keeps it out of any pool, and the
// stream's close closes it.
func (r *run) openTLS(ctx context.Context, token string, timeout time.Duration) (*stream, error) {
	dialCtx, cancel := context.WithTimeout(ctx, timeout)
	cc, err := r.tlsTransport.NewClientConn(dialCtx, "https", r.hostport)
	cancel() // the context bounds the dial and handshake only
	if err != nil {
		return nil, err
	}
	release := sync.OnceFunc(func() { cc.Close() })
	s, err := r.openH2(ctx, cc, token, timeout, release)
	if err != nil {
		release()
		return nil, err
	}
	return s, nil
}
