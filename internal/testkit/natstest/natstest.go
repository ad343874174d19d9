// Package natstest is for tests only: in-process nats-servers with
// JetStream, single or clustered, that stop and start again on the same
// ports with the same store. It imports nothing of ours but poll, so the
// broker's and the shopping module's own tests can use it too.
package natstest

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/honeydo/realtime/internal/testkit/poll"
)

// NATS is one in-process nats-server with JetStream, storing in a temp dir.
// Stop and Start bring it down and back on the same ports with the same
// store, like a restarted server.
type NATS struct {
	Server *natsserver.Server // nil while stopped
	opts   *natsserver.Options
}

// Cluster is a JetStream cluster of in-process nats-servers.
type Cluster struct {
	Nodes []*NATS
}

// Start starts a single nats-server on a random loopback port.
func Start(t testing.TB) *NATS {
	t.Helper()
	n := &NATS{opts: natsOptions(t, "solo")}
	n.Start(t)
	t.Cleanup(n.Stop)
	return n
}

func natsOptions(t testing.TB, name string) *natsserver.Options {
	return &natsserver.Options{
		ServerName: name,
		Host:       "127.0.0.1",
		Port:       -1,
		JetStream:  true,
		StoreDir:   t.TempDir(),
		NoLog:      true,
		NoSigs:     true,
	}
}

// Start starts (or restarts) the server and waits until it accepts clients.
func (n *NATS) Start(t testing.TB) {
	t.Helper()
	// The server keeps (and fills in) the options it is given: give it a
	// copy, so that recording its ports below does not race with it.
	opts := *n.opts
	s, err := natsserver.NewServer(&opts)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatalf("nats-server %s did not start", n.opts.ServerName)
	}
	n.Server = s
	// Keep the ports for restarts.
	n.opts.Port = s.Addr().(*net.TCPAddr).Port
	if a := s.ClusterAddr(); a != nil {
		n.opts.Cluster.Port = a.Port
	}
}

// Stop shuts the server down; it is a no-op when already stopped.
func (n *NATS) Stop() {
	if n.Server == nil {
		return
	}
	n.Server.Shutdown()
	n.Server.WaitForShutdown()
	n.Server = nil
}

// Name is the server's name ("solo", or "n0", "n1", … in a cluster), as
// JetStream reports it, e.g. for a stream's leader.
func (n *NATS) Name() string { return n.opts.ServerName }

// Options are the options the next Start uses (after the first Start, with
// the ports it was given): change them while the server is stopped, e.g. to
// require a password after a restart.
func (n *NATS) Options() *natsserver.Options { return n.opts }

// Addr is the server's client address, host:port.
func (n *NATS) Addr() string { return fmt.Sprintf("127.0.0.1:%d", n.opts.Port) }

// URL is the server's client URL.
func (n *NATS) URL() string { return "nats://" + n.Addr() }

// StartCluster starts size nats-servers routed into one JetStream
// cluster and waits until it has elected a meta leader.
func StartCluster(t testing.TB, size int) *Cluster {
	t.Helper()
	c := &Cluster{}
	// JetStream clustering wants every server to know its routes from the
	// start, so the route ports are chosen up front.
	ports := make([]int, size)
	for i := range ports {
		ports[i] = freePort(t)
	}
	for i := range size {
		o := natsOptions(t, fmt.Sprintf("n%d", i))
		o.Cluster = natsserver.ClusterOpts{Name: "honeydo-test", Host: "127.0.0.1", Port: ports[i]}
		for j, p := range ports {
			if j != i {
				o.Routes = append(o.Routes, &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", p)})
			}
		}
		c.Nodes = append(c.Nodes, &NATS{opts: o})
	}
	for _, n := range c.Nodes {
		n.Start(t)
		t.Cleanup(n.Stop)
	}
	c.WaitFormed(t)
	return c
}

// WaitFormed waits until every running server is routed to the other
// running ones and the JetStream meta group has a leader.
func (c *Cluster) WaitFormed(t testing.TB) {
	t.Helper()
	poll.Eventually(t, 20*time.Second, 20*time.Millisecond, func() error {
		running := 0
		for _, n := range c.Nodes {
			if n.Server != nil {
				running++
			}
		}
		leader := false
		for _, n := range c.Nodes {
			if n.Server == nil {
				continue
			}
			if got := n.Server.NumRemotes(); got < running-1 {
				return fmt.Errorf("%s is routed to %d servers, want %d", n.opts.ServerName, got, running-1)
			}
			if !n.Server.JetStreamIsCurrent() {
				return fmt.Errorf("%s is not current with the meta group", n.opts.ServerName)
			}
			if n.Server.JetStreamIsLeader() {
				leader = true
			}
		}
		if !leader {
			return fmt.Errorf("no JetStream meta leader yet")
		}
		for _, n := range c.Nodes {
			// Only the meta leader answers; it counts the peers it has
			// heard from.
			if n.Server != nil && n.Server.JetStreamIsLeader() {
				if peers := n.Server.JetStreamClusterPeers(); len(peers) < running {
					return fmt.Errorf("the meta leader knows %d JetStream peers, want %d", len(peers), running)
				}
			}
		}
		return nil
	})
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// URLs is every server's client URL, comma-separated, as NATS clients take
// them.
func (c *Cluster) URLs() string {
	urls := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		urls[i] = n.URL()
	}
	return strings.Join(urls, ",")
}
