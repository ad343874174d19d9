// Package devhost keeps a dev-mode server from answering web pages that
// reach it by DNS rebinding.
//
// A dev-mode server mints tokens for anybody who asks, so it must not answer
// a web page. A page on a foreign site cannot read its responses (CORS), but
// one whose own domain rebinds to 127.0.0.1 is same-origin with the server
// as far as the browser knows: its requests arrive from the loopback, under
// the page's domain name. The Host header is what gives it away, so in dev
// mode every request, RPCs included, must name this machine or a name the
// operator allowed ([Guard]).
//
// Everything here is stateless and safe for concurrent use.
package devhost

import (
	"errors"
	"net"
	"net/http"
	"strings"

	"connectrpc.com/connect"
)

// Allowed reports whether a Host header (with or without a port) names the
// loopback (localhost, 127.0.0.0/8, ::1) or one of allowed, which are
// lower-case host names without ports, as [Guard] keeps them. With allowed
// nil only the loopback passes.
func Allowed(hostport string, allowed []string) bool {
	host := canonHost(hostport)
	if host == "localhost" {
		return true
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return true
	}
	for _, a := range allowed {
		if host == a {
			return true
		}
	}
	return false
}

// canonHost is the one form in which a Host header and the configured
// hosts are compared: port, brackets and trailing dot removed, lower-case.
func canonHost(hostport string) string {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	return strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
}

// normalize turns the configured allowed hosts into Allowed's form:
// lower-case, port and trailing dot removed, blanks dropped.
func normalize(hosts []string) []string {
	var out []string
	for _, h := range hosts {
		if h = canonHost(strings.TrimSpace(h)); h != "" {
			out = append(out, h)
		}
	}
	return out
}

// errForeignHost is what a dev-mode server answers a foreign Host.
var errForeignHost = errors.New("dev mode answers requests to localhost, 127.0.0.1 and ::1 only " +
	"(and to the names in --dev-allowed-hosts): this Host could be a web page whose domain points at this machine")

// Guard refuses requests whose Host is neither the loopback nor one of
// allowedHosts (host names as the operator wrote them; case, ports and a
// trailing dot do not matter), before h runs or any body is read: RPCs get
// PermissionDenied in their own protocol, everything else 403.
func Guard(h http.Handler, allowedHosts []string) http.Handler {
	allowed := normalize(allowedHosts)
	errs := connect.NewErrorWriter()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if Allowed(r.Host, allowed) {
			h.ServeHTTP(w, r)
			return
		}
		if errs.IsSupported(r) {
			_ = errs.Write(w, r, connect.NewError(connect.CodePermissionDenied, errForeignHost))
			return
		}
		http.Error(w, errForeignHost.Error(), http.StatusForbidden)
	})
}
