// Package devcert makes throwaway self-signed TLS certificates for servers
// on this machine: the realtimed --tls-cert of scripts/bench-peers.sh's
// TLS=1 mode (through scripts/devcert) and the HTTPS servers of tests
// (testkit.StartTLSServer). Never for production: the key is written in
// the clear and nobody but the file's reader vouches for the certificate.
//
// Concurrency: [Write] may be called concurrently for different
// directories.
package devcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// The names of the files [Write] creates.
const (
	CertFile = "cert.pem"
	KeyFile  = "key.pem"
)

// Files are the paths of what [Write] created.
type Files struct {
	// Cert is the certificate (PEM). It is its own CA: a client trusts it
	// by taking this file as its CA file (realtimectl --ca-file).
	Cert string
	// Key is its ECDSA P-256 private key (PEM, PKCS #8), readable by the
	// owner only.
	Key string
}

// Write creates [CertFile] and [KeyFile] in dir (which must exist): a
// self-signed certificate for hosts, host names or IP addresses (at least
// one), valid from an hour ago for validFor, and its key. It replaces
// files of those names.
func Write(dir string, hosts []string, validFor time.Duration) (Files, error) {
	if len(hosts) == 0 {
		return Files{}, errors.New("devcert: no host to certify")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Files{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return Files{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: hosts[0], Organization: []string{"realtimed devcert (throwaway)"}},
		NotBefore:    now.Add(-time.Hour), // the clocks of client and server may differ a little
		NotAfter:     now.Add(validFor),
		// Self-signed and trusted as a root: it signs itself.
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return Files{}, fmt.Errorf("devcert: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return Files{}, fmt.Errorf("devcert: %w", err)
	}
	f := Files{Cert: filepath.Join(dir, CertFile), Key: filepath.Join(dir, KeyFile)}
	if err := writePEM(f.Key, "PRIVATE KEY", keyDER, 0o600); err != nil {
		return Files{}, err
	}
	if err := writePEM(f.Cert, "CERTIFICATE", der, 0o644); err != nil {
		return Files{}, err
	}
	return f, nil
}

func writePEM(path, typ string, der []byte, perm os.FileMode) error {
	// Remove first: WriteFile keeps the mode of a file that exists.
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), perm)
}
