// Command devcert writes a throwaway self-signed certificate and key
// (package devcert) for realtimed --tls-cert/--tls-key on this machine:
// scripts/bench-peers.sh runs it in its TLS=1 mode.
//
//	go run ./scripts/devcert --dir DIR [--hosts 127.0.0.1,localhost] [--valid-for 24h]
//
// It prints the two paths, certificate first; the certificate is also the
// CA file clients trust it with (realtimectl --ca-file).
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/honeydo/realtime/internal/devcert"
)

func main() {
	dir := flag.String("dir", "", "existing `directory` to write cert.pem and key.pem into (required)")
	hosts := flag.String("hosts", "127.0.0.1", "comma-separated host names and IP addresses the certificate names")
	validFor := flag.Duration("valid-for", 24*time.Hour, "how long the certificate stays valid")
	flag.Parse()
	if *dir == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	f, err := devcert.Write(*dir, strings.Split(*hosts, ","), *validFor)
	if err != nil {
		fmt.Fprintln(os.Stderr, "devcert:", err)
		os.Exit(1)
	}
	fmt.Println(f.Cert)
	fmt.Println(f.Key)
}
