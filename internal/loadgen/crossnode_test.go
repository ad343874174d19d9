package loadgen_test

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/honeydo/realtime/internal/auth"
	"github.com/honeydo/realtime/internal/cluster"
	"github.com/honeydo/realtime/internal/metrics"
	"github.com/honeydo/realtime/internal/testkit/natstest"
	"github.com/honeydo/realtime/internal/testkit/poll"
)

// TestMain_CrossNode: with --publish-addr the publisher is one realtimed
// node and the subscribers are on another, both on one JetStream stream,
// as scripts/bench-cluster.sh runs them. Every event is published by node 1
// and written to its stream by node 2 (each node's own counters say so), and
// none is lost on the way through NATS.
func TestMain_CrossNode(t *testing.T) {
	nats := natstest.Start(t)
	dir := t.TempDir() // the nodes' shared --data-dir: the generator mints with its key
	key, err := auth.LoadOrCreateDevKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	pubM, subM := metrics.New(), metrics.New()
	pubNode := cluster.StartNode(t, cluster.NodeConfig{Name: "pub", NATSURL: nats.URL(), Key: key, BenchAPI: true, Metrics: pubM})
	subNode := cluster.StartNode(t, cluster.NodeConfig{Name: "sub", NATSURL: nats.URL(), Key: key, BenchAPI: true, Metrics: subM})

	// Both nodes run in this process, so only one pid can stand for a
	// node: it is given as the publishing node's, to see its keys.
	res := runBench(t, "--addr", subNode.URL(), "--publish-addr", pubNode.URL(), "--data-dir", dir,
		"--publish-server-pid", strconv.Itoa(os.Getpid()), "--progress", "0", "--idle", "1s",
		"--workload", "w4", "--conns", "50", "--rate", "400", "--duration-ms", "250", "--publishers", "2")

	const want = 100.0 // 2 publishers x 200/s for 250 ms, one delivery each
	if res["published"] != want || res["expected"] != want || res["received"] != want || res["lost"] != 0.0 {
		t.Fatalf("published %v, expected %v, received %v, lost %v; want %v, %v, %v, 0",
			res["published"], res["expected"], res["received"], res["lost"], want, want, want)
	}
	if res["addr"] != subNode.URL() || res["publish_addr"] != pubNode.URL() || res["cross_node"] != true || res["publishers"] != 2.0 {
		t.Fatalf("addr %v, publish_addr %v, cross_node %v, publishers %v", res["addr"], res["publish_addr"], res["cross_node"], res["publishers"])
	}
	if v, ok := res["publish_server_us_per_delivery"].(float64); !ok || v <= 0 {
		t.Errorf("publish_server_us_per_delivery = %v", res["publish_server_us_per_delivery"])
	}
	if _, ok := res["publish_server_cpu_pct"].(float64); !ok {
		t.Errorf("publish_server_cpu_pct = %v", res["publish_server_cpu_pct"])
	}
	// No --server-pid: the subscribers' node's share, and so the sum, are
	// unknown.
	if res["server_us_per_delivery"] != nil || res["servers_us_per_delivery"] != nil {
		t.Errorf("server_us_per_delivery %v, servers_us_per_delivery %v: want null (no --server-pid)",
			res["server_us_per_delivery"], res["servers_us_per_delivery"])
	}

	// The nodes' own counters: node 1 published, node 2 delivered. A
	// stream counts its writes after making them, so wait for the count.
	published := "realtime_events_published_total{target_kind=user}"
	delivered := "realtime_events_delivered_total"
	poll.Eventually(t, 20*time.Second, 50*time.Millisecond, func() error {
		p, err := pubM.Gather()
		if err != nil {
			return err
		}
		s, err := subM.Gather()
		if err != nil {
			return err
		}
		if p[published] != want || p[delivered] != 0 || s[published] != 0 || s[delivered] != want {
			return fmt.Errorf("node 1 published %v, delivered %v; node 2 published %v, delivered %v; want %v, 0, 0, %v",
				p[published], p[delivered], s[published], s[delivered], want, want)
		}
		return nil
	})
}
