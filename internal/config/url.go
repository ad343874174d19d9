package config

import (
	"fmt"
	"strings"
)

// ServerURL turns the value of a client's --addr flag into a base URL: an
// http:// or https:// URL as given, or a bare host:port (":port" meaning
// 127.0.0.1) as http://. Every realtimectl command reads --addr through it,
// so that they all accept the same spellings.
func ServerURL(addr string) (string, error) {
	addr = strings.TrimSpace(addr)
	if addr == "" {
		return "", fmt.Errorf("--addr is empty")
	}
	if !strings.Contains(addr, "://") {
		if strings.HasPrefix(addr, ":") {
			addr = "127.0.0.1" + addr
		}
		addr = "http://" + addr
	}
	if !strings.HasPrefix(addr, "http://") && !strings.HasPrefix(addr, "https://") {
		return "", fmt.Errorf("--addr must be an http:// or https:// URL, not %q", addr)
	}
	return strings.TrimRight(addr, "/"), nil
}
