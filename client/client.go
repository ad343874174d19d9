package client

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"connectrpc.com/connect"

	"github.com/honeydo/realtime/gen/honeydo/realtime/v1/realtimev1connect"
)

// NewRealtimeClient returns the generated RealtimeService client, set up from
// the connection fields of opts: BaseURL, HTTPClient, Protocol,
// ClientOptions, Token (called before every call, see [TokenInterceptor]),
// Origin (sent with every call, see [WithOrigin]) and CallTimeout (see
// [CallTimeoutInterceptor]). Use it for Ping, WhoAmI and Publish; use [Subscribe]
// for streams. With a nil HTTPClient the client shares a process-wide
// transport chosen as [Options.HTTPClient] describes.
func NewRealtimeClient(opts Options) (realtimev1connect.RealtimeServiceClient, error) {
	base, err := checkBaseURL(opts.BaseURL)
	if err != nil {
		return nil, err
	}
	httpClient := opts.HTTPClient
	if httpClient == nil {
		httpClient = sharedHTTPClient(opts.Protocol, base)
	}
	timeout := opts.CallTimeout
	if timeout == 0 {
		timeout = defaultCallTimeout
	}
	copts := []connect.ClientOption{connect.WithInterceptors(CallTimeoutInterceptor(timeout))}
	if opts.Token != nil {
		copts = append(copts, connect.WithInterceptors(TokenInterceptor(opts.Token)))
	}
	if opts.Origin != "" {
		copts = append(copts, WithOrigin(opts.Origin))
	}
	return newGenerated(httpClient, base, opts.Protocol, opts.ClientOptions, copts...), nil
}

func newGenerated(hc connect.HTTPClient, base *url.URL, p Protocol, extra []connect.ClientOption, first ...connect.ClientOption) realtimev1connect.RealtimeServiceClient {
	copts := first
	if o := p.clientOption(); o != nil {
		copts = append(copts, o)
	}
	copts = append(copts, extra...)
	return realtimev1connect.NewRealtimeServiceClient(hc, base.String(), copts...)
}

// checkBaseURL parses an http(s) base URL.
func checkBaseURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("client: Options.BaseURL is required, e.g. http://127.0.0.1:8080")
	}
	u, err := url.Parse(strings.TrimRight(raw, "/"))
	if err != nil {
		return nil, fmt.Errorf("client: Options.BaseURL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: Options.BaseURL must be an http:// or https:// URL with a host, not %q", raw)
	}
	return u, nil
}

// newTransport returns a transport for protocol p to base: h2c for gRPC on
// an http:// URL (gRPC needs HTTP/2), otherwise HTTP/1.1 on http:// and
// HTTP/2 negotiated by ALPN on https://.
func newTransport(p Protocol, base *url.URL) *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if p == ProtocolGRPC && base.Scheme == "http" {
		protocols := new(http.Protocols)
		protocols.SetUnencryptedHTTP2(true)
		tr.Protocols = protocols
	}
	return tr
}

var shared struct {
	sync.Mutex
	clients map[bool]*http.Client // keyed by h2c
}

func sharedHTTPClient(p Protocol, base *url.URL) *http.Client {
	h2c := p == ProtocolGRPC && base.Scheme == "http"
	shared.Lock()
	defer shared.Unlock()
	if shared.clients == nil {
		shared.clients = make(map[bool]*http.Client)
	}
	c := shared.clients[h2c]
	if c == nil {
		c = &http.Client{Transport: newTransport(p, base)}
		shared.clients[h2c] = c
	}
	return c
}
