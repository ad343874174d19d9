package main

import (
	"net/http"

	"github.com/honeydo/realtime/client"
	"github.com/honeydo/realtime/internal/clienttls"
	"github.com/honeydo/realtime/internal/config"
)

// serverFlags say where the server is and how to reach it: the same flags
// in every command that calls it.
type serverFlags struct {
	addr     string
	protocol string
	tls      clienttls.Flags
}

func (s *serverFlags) register(fs *flagSet) {
	s.registerAddr(fs)
	fs.StringVar(&s.protocol, "protocol", "connect", "wire `protocol`: connect, grpc (h2c on http://) or grpcweb")
}

// registerAddr defines the flags of the server's address and TLS, without
// --protocol (for commands that speak plain HTTP).
func (s *serverFlags) registerAddr(fs *flagSet) {
	fs.StringVar(&s.addr, "addr", "http://127.0.0.1:8080", "the server's base `URL` (http:// is assumed when no scheme is given)")
	s.tls.Register(fs.FlagSet)
}

// options returns the client options for the server flags. When the TLS
// flags ask for a client of its own, options makes one and closeIdle
// releases its connections; otherwise closeIdle does nothing.
func (s *serverFlags) options(fs *flagSet) (opts client.Options, closeIdle func(), err error) {
	p, err := client.ParseProtocol(s.protocol)
	if err != nil {
		return client.Options{}, nil, usagef(fs.cmd, "--protocol: %v", err)
	}
	base, hc, err := s.httpClient(fs)
	if err != nil {
		return client.Options{}, nil, err
	}
	opts = client.Options{BaseURL: base, Protocol: p}
	closeIdle = func() {}
	if hc != nil {
		opts.HTTPClient = hc
		closeIdle = hc.CloseIdleConnections
	}
	return opts, closeIdle, nil
}

// httpClient returns the server's base URL and, when --ca-file or
// --insecure-skip-verify is given, an HTTP client with that TLS
// configuration (nil otherwise: the client package's own will do).
func (s *serverFlags) httpClient(fs *flagSet) (string, *http.Client, error) {
	base, err := config.ServerURL(s.addr)
	if err != nil {
		return "", nil, usagef(fs.cmd, "%v", err)
	}
	if !s.tls.Given() {
		return base, nil, nil
	}
	if err := s.tls.Check(base); err != nil {
		return "", nil, usagef(fs.cmd, "%v", err)
	}
	cfg, err := s.tls.Config(base, fs.std.stderr)
	if err != nil {
		return "", nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = cfg
	tr.ForceAttemptHTTP2 = true // a custom TLS config turns HTTP/2 off unless asked
	return base, &http.Client{Transport: tr}, nil
}
