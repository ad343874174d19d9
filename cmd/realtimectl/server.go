package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/honeydo/realtime/client"
	"github.com/honeydo/realtime/internal/config"
)

// serverFlags say where the server is and how to reach it: the same flags
// in every command that calls it.
type serverFlags struct {
	addr     string
	protocol string
	caFile   string
	insecure bool
}

func (s *serverFlags) register(fs *flagSet) {
	s.registerAddr(fs)
	fs.StringVar(&s.protocol, "protocol", "connect", "wire `protocol`: connect, grpc (h2c on http://) or grpcweb")
}

// registerAddr defines the flags of the server's address and TLS, without
// --protocol (for commands that speak plain HTTP).
func (s *serverFlags) registerAddr(fs *flagSet) {
	fs.StringVar(&s.addr, "addr", "http://127.0.0.1:8080", "the server's base `URL` (http:// is assumed when no scheme is given)")
	fs.StringVar(&s.caFile, "ca-file", "", "https:// only: trust the server's certificate if one of the CA certificates in this PEM\n`file` signed it, instead of the system's CAs (for a private or self-signed CA)")
	fs.BoolVar(&s.insecure, "insecure-skip-verify", false, "https:// only: do not check the server's certificate at all (tests only: anyone on the\nnetwork path could read and change the traffic; prints a warning)")
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
	if s.caFile == "" && !s.insecure {
		return base, nil, nil
	}
	if !strings.HasPrefix(base, "https://") {
		return "", nil, usagef(fs.cmd, "--ca-file and --insecure-skip-verify need an https:// --addr, not %s", base)
	}
	if s.caFile != "" && s.insecure {
		return "", nil, usagef(fs.cmd, "--ca-file and --insecure-skip-verify exclude each other")
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.insecure {
		fmt.Fprintf(fs.std.stderr, "warning: --insecure-skip-verify: the certificate of %s is not checked; anyone on the network path could read and change this traffic\n", base)
		cfg.InsecureSkipVerify = true
	} else {
		pem, err := os.ReadFile(s.caFile)
		if err != nil {
			return "", nil, fmt.Errorf("--ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return "", nil, fmt.Errorf("--ca-file %s: no PEM certificate in it", s.caFile)
		}
		cfg.RootCAs = pool
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = cfg
	tr.ForceAttemptHTTP2 = true // a custom TLS config turns HTTP/2 off unless asked
	return base, &http.Client{Transport: tr}, nil
}

// explainTLS adds what to do to an error caused by the server's
// certificate; other errors come back as they are.
func explainTLS(err error) error {
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	var invalid x509.CertificateInvalidError
	switch {
	case errors.As(err, &unknown):
		return fmt.Errorf("%w\n(the server's certificate is not signed by a CA this command trusts: pass its CA certificate with --ca-file ca.pem, or --insecure-skip-verify to test without checking)", err)
	case errors.As(err, &host):
		return fmt.Errorf("%w\n(the certificate does not name the host in --addr: use a name or address the certificate lists)", err)
	case errors.As(err, &invalid):
		return fmt.Errorf("%w\n(the server's certificate is not valid, e.g. expired or not yet valid)", err)
	}
	return err
}

// isCertificateError reports whether err comes from checking the server's
// certificate: retrying will not help.
func isCertificateError(err error) bool {
	var verify *tls.CertificateVerificationError
	return errors.As(err, &verify)
}
