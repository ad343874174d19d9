// Package clienttls is the client side of TLS for realtimectl's commands
// (realtimectl bench included): the --ca-file and --insecure-skip-verify
// flags, the [tls.Config] they ask for, and the hint an error from checking
// the server's certificate deserves. Every command reads the flags through
// it, so they mean the same everywhere.
//
// Concurrency: a [Flags] is filled in by flag parsing and read afterwards;
// the functions are safe for concurrent use.
package clienttls

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// Flags are the TLS flags of a command that calls the server. The zero
// value trusts the system's CAs.
type Flags struct {
	// CAFile is --ca-file: a PEM file of CA certificates to trust instead
	// of the system's. Empty means the system's.
	CAFile string
	// InsecureSkipVerify is --insecure-skip-verify: no check of the
	// server's certificate at all. False by default.
	InsecureSkipVerify bool
}

// Register defines --ca-file and --insecure-skip-verify on fs.
func (f *Flags) Register(fs *flag.FlagSet) {
	fs.StringVar(&f.CAFile, "ca-file", "", "https:// only: trust the server's certificate if one of the CA certificates in this PEM\n`file` signed it, instead of the system's CAs (for a private or self-signed CA)")
	fs.BoolVar(&f.InsecureSkipVerify, "insecure-skip-verify", false, "https:// only: do not check the server's certificate at all (tests only: anyone on the\nnetwork path could read and change the traffic; prints a warning)")
}

// Given reports whether either flag is set, that is whether the command
// needs a TLS configuration other than the default one.
func (f Flags) Given() bool { return f.CAFile != "" || f.InsecureSkipVerify }

// Check returns an error, a mistake on the command line, when the flags do
// not fit together or with base, the server's base URL: both are for
// https:// only, and they exclude each other.
func (f Flags) Check(base string) error {
	if !f.Given() {
		return nil
	}
	if !strings.HasPrefix(base, "https://") {
		return fmt.Errorf("--ca-file and --insecure-skip-verify need an https:// --addr, not %s", base)
	}
	if f.CAFile != "" && f.InsecureSkipVerify {
		return errors.New("--ca-file and --insecure-skip-verify exclude each other")
	}
	return nil
}

// Config returns the TLS configuration the flags ask for (TLS 1.2 at
// least), for calls to base. Under --insecure-skip-verify it writes a
// warning naming base to warn. Call [Flags.Check] first.
func (f Flags) Config(base string, warn io.Writer) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	switch {
	case f.InsecureSkipVerify:
		fmt.Fprintf(warn, "warning: --insecure-skip-verify: the certificate of %s is not checked; anyone on the network path could read and change this traffic\n", base)
		cfg.InsecureSkipVerify = true
	case f.CAFile != "":
		pem, err := os.ReadFile(f.CAFile)
		if err != nil {
			return nil, fmt.Errorf("--ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--ca-file %s: no PEM certificate in it", f.CAFile)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// Explain adds what to do to an error caused by the server's certificate;
// other errors come back as they are.
func Explain(err error) error {
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

// IsCertificateError reports whether err comes from checking the server's
// certificate: retrying will not help.
func IsCertificateError(err error) bool {
	var verify *tls.CertificateVerificationError
	return errors.As(err, &verify)
}
