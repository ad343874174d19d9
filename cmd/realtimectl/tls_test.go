package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/honeydo/realtime/internal/testkit/syncbuf"
)

// TestTLS runs realtimectl against the realtimed binary serving HTTPS with
// a certificate from a CA made by the test: trusted with --ca-file,
// refused with a message that says what to do without it, and accepted
// with a warning under --insecure-skip-verify.
func TestTLS(t *testing.T) {
	checkGoroutines(t)
	dir := t.TempDir()
	caFile := writeTestPKI(t, dir)
	url, dataDir := startTLSRealtimed(t, filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem"))

	// Trusted through --ca-file, over each protocol (gRPC: HTTP/2 by ALPN).
	for _, protocol := range []string{"connect", "grpc", "grpcweb"} {
		out, stderr, err := cli(t, "whoami", "--addr", url, "--ca-file", caFile, "--user", "alice", "--data-dir", dataDir, "--protocol", protocol)
		if err != nil || !strings.Contains(out, `"userId": "alice"`) || stderr != "" {
			t.Fatalf("whoami --ca-file --protocol %s: %v\n%s%s", protocol, err, out, stderr)
		}
	}
	if out := mustCLI(t, "health", "--addr", url, "--ca-file", caFile, "--ready"); out != url+"/readyz: ready\n" {
		t.Fatalf("health over TLS: %q", out)
	}
	sub := cliBackground(t, "subscribe", "--addr", url, "--ca-file", caFile, "--user", "bob", "--data-dir", dataDir, "--protocol", "grpc", "--max-events", "1")
	sub.waitStderr(t, "connected as bob")
	mustCLI(t, "publish", "--addr", url, "--ca-file", caFile, "--dev", "--data-dir", dataDir, "--to-user", "bob", "--notification", "over TLS")
	if err := sub.wait(t); err != nil || !strings.Contains(sub.stdout.String(), `"message":"over TLS"`) {
		t.Fatalf("subscribe over TLS: %v\n%s%s", err, sub.stdout.String(), sub.stderr.String())
	}

	// Without --ca-file the system's CAs do not know the test's CA.
	const hint = "pass its CA certificate with --ca-file ca.pem, or --insecure-skip-verify"
	for _, cmd := range [][]string{
		{"whoami", "--user", "alice", "--data-dir", dataDir},
		{"publish", "--dev", "--data-dir", dataDir, "--to-user", "bob", "--notification", "x"},
		{"health"},
		// A stream stops at once instead of reconnecting forever.
		{"subscribe", "--user", "bob", "--data-dir", dataDir},
	} {
		_, _, err := cli(t, append(cmd, "--addr", url)...)
		if err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") || !strings.Contains(err.Error(), hint) {
			t.Fatalf("%s without --ca-file: %v", cmd[0], err)
		}
	}
	// The certificate names localhost, not 127.0.0.1.
	_, _, err := cli(t, "health", "--addr", strings.Replace(url, "localhost", "127.0.0.1", 1), "--ca-file", caFile)
	if err == nil || !strings.Contains(err.Error(), "does not name the host in --addr") {
		t.Fatalf("health at another name: %v", err)
	}

	// --insecure-skip-verify: works, and says what it gives up.
	out, stderr, err := cli(t, "whoami", "--addr", url, "--insecure-skip-verify", "--user", "carol", "--data-dir", dataDir)
	if err != nil || !strings.Contains(out, `"userId": "carol"`) {
		t.Fatalf("whoami --insecure-skip-verify: %v\n%s", err, out)
	}
	if !strings.Contains(stderr, "warning: --insecure-skip-verify: the certificate of "+url+" is not checked") {
		t.Fatalf("no warning on stderr: %q", stderr)
	}
	// The same from the environment.
	t.Setenv("REALTIMECTL_INSECURE_SKIP_VERIFY", "true")
	if _, stderr, err := cli(t, "health", "--addr", url); err != nil || !strings.Contains(stderr, "warning: --insecure-skip-verify") {
		t.Fatalf("REALTIMECTL_INSECURE_SKIP_VERIFY: %v %q", err, stderr)
	}
}

// writeTestPKI writes ca.pem, and server.pem and server-key.pem for
// localhost signed by it, into dir; it returns ca.pem's path.
func writeTestPKI(t *testing.T, dir string) string {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "realtimectl test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("server.pem", "CERTIFICATE", der)
	write("server-key.pem", "PRIVATE KEY", keyDER)
	return write("ca.pem", "CERTIFICATE", caDER)
}

var realtimedBuild struct {
	once      sync.Once
	dir, path string
	err       error
}

// TestMain removes the realtimed binary the TLS test built.
func TestMain(m *testing.M) {
	code := m.Run()
	if realtimedBuild.dir != "" {
		os.RemoveAll(realtimedBuild.dir)
	}
	os.Exit(code)
}

// startTLSRealtimed runs the realtimed binary (built once) with --dev and
// the certificate on a free loopback port, and returns its https:// URL and
// its data directory. The URL names localhost, as the certificate does. It is stopped with SIGTERM when the test ends.
func startTLSRealtimed(t *testing.T, cert, key string) (url, dataDir string) {
	t.Helper()
	realtimedBuild.once.Do(func() {
		realtimedBuild.dir, realtimedBuild.err = os.MkdirTemp("", "realtimectl-test-")
		if realtimedBuild.err != nil {
			return
		}
		realtimedBuild.path = filepath.Join(realtimedBuild.dir, "realtimed")
		out, err := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", realtimedBuild.path, "../realtimed").CombinedOutput()
		if err != nil {
			realtimedBuild.err = fmt.Errorf("go build ../realtimed: %v\n%s", err, out)
		}
	})
	if realtimedBuild.err != nil {
		t.Fatal(realtimedBuild.err)
	}
	dataDir = t.TempDir()
	cmd := exec.Command(realtimedBuild.path, "--dev", "--addr", "127.0.0.1:0", "--data-dir", dataDir,
		"--tls-cert", cert, "--tls-key", key, "--log-format", "json")
	cmd.Dir = t.TempDir()
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REALTIMED_") && !strings.HasPrefix(kv, "CLERK_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var logs syncbuf.Buffer
	started := make(chan string, 1)
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			logs.Write(append(sc.Bytes(), '\n'))
			var rec struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "realtimed starting" {
				started <- rec.Addr
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			t.Errorf("realtimed did not stop within 15s of SIGTERM; killing it")
			_ = cmd.Process.Kill()
			<-exited
		}
		<-readerDone
		if t.Failed() {
			t.Logf("realtimed's log:\n%s", logs.String())
		}
	})
	select {
	case addr := <-started:
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatal(err)
		}
		// The certificate's name; realtimed listens on 127.0.0.1.
		return "https://localhost:" + port, dataDir
	case <-readerDone:
		t.Fatalf("realtimed exited before listening:\n%s", logs.String())
	case <-time.After(120 * time.Second):
		t.Fatalf("realtimed did not start within 120s:\n%s", logs.String())
	}
	return "", ""
}
