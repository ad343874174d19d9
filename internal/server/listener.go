package server

import (
	"context"
	"crypto/tls"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// ConnLimits is the budget of connections each source address may hold.
// A connection is unauthenticated from its accept until a call on it
// presents a valid credential; connections that only call public
// procedures (health, reflection) or fetch the web demo stay
// unauthenticated. A connection over budget is closed as soon as it is
// accepted, before it costs a goroutine.
type ConnLimits struct {
	// PerAddr caps the connections open at once from one source address
	// (for IPv6, one /64: a single host usually holds a whole /64). Zero
	// means 256: a browser needs at most 6 (HTTP/1.1) or 1 (HTTP/2), a Go
	// service a few, so this leaves room for a household or office behind
	// one NAT address. Negative means unlimited.
	PerAddr int
	// UnauthenticatedPerAddr caps, of those, the connections that have not
	// yet presented a valid credential. Zero means 64; negative means
	// unlimited.
	UnauthenticatedPerAddr int
	// Exempt lists source prefixes the budget does not apply to: a load
	// balancer or reverse proxy carries many clients' connections from a
	// few addresses. Nil means loopback only ([DefaultConnLimitExempt]),
	// where a local proxy or development tool connects from; an empty,
	// non-nil slice exempts no one.
	Exempt []netip.Prefix
}

// The defaults of [ConnLimits].
const (
	DefaultConnsPerAddr                = 256
	DefaultUnauthenticatedConnsPerAddr = 64
)

// DefaultConnLimitExempt is the default of [ConnLimits.Exempt]: loopback.
var DefaultConnLimitExempt = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("::1/128"),
}

func (l ConnLimits) withDefaults() ConnLimits {
	if l.PerAddr == 0 {
		l.PerAddr = DefaultConnsPerAddr
	}
	if l.UnauthenticatedPerAddr == 0 {
		l.UnauthenticatedPerAddr = DefaultUnauthenticatedConnsPerAddr
	}
	if l.Exempt == nil {
		l.Exempt = DefaultConnLimitExempt
	}
	return l
}

// Reasons a connection is refused, as metric labels.
const (
	refusedAddrBudget   = "addr_budget"
	refusedUnauthBudget = "unauthenticated_budget"
)

// budgetListener enforces [ConnLimits] at accept and keeps track of which
// connections have carried a verified call.
type budgetListener struct {
	net.Listener
	limits  ConnLimits
	refused func(reason string)

	mu    sync.Mutex
	addrs map[netip.Addr]*addrConns // only addresses with open connections
	conns map[*trackedConn]struct{}
}

type addrConns struct{ open, unauthenticated int }

func newBudgetListener(ln net.Listener, limits ConnLimits, refused func(reason string)) *budgetListener {
	return &budgetListener{Listener: ln, limits: limits, refused: refused,
		addrs: make(map[netip.Addr]*addrConns), conns: make(map[*trackedConn]struct{})}
}

// Accept returns the next connection within budget and closes the others.
// Connections from exempt addresses are returned as they are.
func (l *budgetListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key, ok := l.key(c.RemoteAddr())
		if !ok {
			return c, nil
		}
		tc := &trackedConn{Conn: c, l: l, key: key}
		if reason := l.admit(tc); reason != "" {
			_ = c.Close()
			l.refused(reason)
			continue
		}
		return tc, nil
	}
}

// closeUnauthenticated closes every connection that has never carried a
// verified call. Shutdown does so at once: nothing on them is worth
// waiting for, and an attacker's HTTP/2 connection would otherwise hold
// the shutdown for the second that net/http gives a peer after GOAWAY.
func (l *budgetListener) closeUnauthenticated() {
	l.mu.Lock()
	var idle []*trackedConn
	for c := range l.conns {
		if !c.authenticated.Load() {
			idle = append(idle, c)
		}
	}
	l.mu.Unlock()
	for _, c := range idle {
		_ = c.Close()
	}
}

// key is the budget a remote address counts against; ok is false for
// exempt addresses.
func (l *budgetListener) key(a net.Addr) (key netip.Addr, ok bool) {
	tcp, isTCP := a.(*net.TCPAddr)
	if !isTCP {
		return netip.Addr{}, false
	}
	addr := tcp.AddrPort().Addr().Unmap()
	for _, p := range l.limits.Exempt {
		if p.Contains(addr) {
			return netip.Addr{}, false
		}
	}
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		addr = p.Addr()
	}
	return addr, true
}

func (l *budgetListener) admit(c *trackedConn) (refusedReason string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.addrs[c.key]
	if n == nil {
		n = &addrConns{}
		l.addrs[c.key] = n
	}
	switch {
	case l.limits.PerAddr > 0 && n.open >= l.limits.PerAddr:
		return refusedAddrBudget
	case l.limits.UnauthenticatedPerAddr > 0 && n.unauthenticated >= l.limits.UnauthenticatedPerAddr:
		return refusedUnauthBudget
	}
	n.open++
	n.unauthenticated++
	l.conns[c] = struct{}{}
	return ""
}

// trackedConn is a connection counted against its address's budget until
// it is closed.
type trackedConn struct {
	net.Conn
	l   *budgetListener
	key netip.Addr

	// authenticated is read without l.mu on every call; it changes only
	// under l.mu, together with closed and the counts.
	authenticated atomic.Bool
	closed        bool
}

// NetConn returns the connection under c, as *tls.Conn's does: the
// connection watch of direct streams (package connwatch) polls its socket.
func (c *trackedConn) NetConn() net.Conn { return c.Conn }

// markAuthenticated moves the connection out of its address's
// unauthenticated budget, once a call on it presented a valid credential.
func (c *trackedConn) markAuthenticated() {
	if c == nil || c.authenticated.Load() {
		return
	}
	c.l.mu.Lock()
	defer c.l.mu.Unlock()
	if c.closed || c.authenticated.Load() {
		return
	}
	c.authenticated.Store(true)
	c.l.addrs[c.key].unauthenticated--
}

// isAuthenticated reports whether a call on the connection presented a
// valid credential; connections exempt from the budget are not tracked and
// count as authenticated.
func (c *trackedConn) isAuthenticated() bool {
	return c == nil || c.authenticated.Load()
}

// CloseWrite lets net/http half-close the connection and linger before it
// closes it, as it does with a bare TCP connection: a client still sending
// a request body the server will not read then gets its response before
// the reset that closing with unread data sends.
func (c *trackedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Close gives the connection's place in the budget back, once.
func (c *trackedConn) Close() error {
	c.l.mu.Lock()
	if !c.closed {
		c.closed = true
		delete(c.l.conns, c)
		n := c.l.addrs[c.key]
		n.open--
		if !c.authenticated.Load() {
			n.unauthenticated--
		}
		if n.open == 0 {
			delete(c.l.addrs, c.key)
		}
	}
	c.l.mu.Unlock()
	return c.Conn.Close()
}

type trackedConnKey struct{}

// connContext is the http.Server's ConnContext: it makes the connection's
// budget reachable from the requests on it.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if tc, ok := c.(*trackedConn); ok {
		return context.WithValue(ctx, trackedConnKey{}, tc)
	}
	return ctx
}

// connFrom returns the tracked connection a request arrived on; nil for
// connections the budget does not track.
func connFrom(ctx context.Context) *trackedConn {
	tc, _ := ctx.Value(trackedConnKey{}).(*trackedConn)
	return tc
}
