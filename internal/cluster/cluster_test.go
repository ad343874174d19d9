package cluster

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	"github.com/honeydo/realtime/internal/testkit/natstest"
	"github.com/honeydo/realtime/internal/testkit/poll"
)

// startNodes starts n realtimed nodes on natsURL sharing key.
func startNodes(t *testing.T, n int, cfg NodeConfig) []*Node {
	t.Helper()
	nodes := make([]*Node, n)
	for i := range nodes {
		c := cfg
		c.Name = fmt.Sprint("rt", i+1)
		nodes[i] = StartNode(t, c)
	}
	return nodes
}

// TestFanOutAcrossNodes: three realtimed nodes on one NATS server; events
// published on node 1 (through the Publish RPC, as a backend service does)
// reach subscribers on nodes 1, 2 and 3 in order, and never another
// household.
func TestFanOutAcrossNodes(t *testing.T) {
	t.Parallel()
	n := natstest.Start(t)
	key := NewDevKey(t)
	nodes := startNodes(t, 3, NodeConfig{NATSURL: n.URL(), Key: key})

	var home []*reader
	for i, node := range nodes {
		home = append(home, startReader(t, node.URL(), key, fmt.Sprint("member", i), "home"))
	}
	neighbour := startReader(t, nodes[2].URL(), key, "neighbour", "next-door")

	svc := serviceClient(nodes[0].URL(), key)
	ctx := context.Background()
	const total = 200
	homeN, nextN := 0, 0
	for i := range total {
		household, text := "home", "h"+strconv.Itoa(homeN)
		if i%10 == 9 {
			household, text = "next-door", "n"+strconv.Itoa(nextN)
			nextN++
		} else {
			homeN++
		}
		_, err := svc.Publish(ctx, connect.NewRequest(&realtimev1.PublishRequest{
			Target: &realtimev1.Target{To: &realtimev1.Target_HouseholdId{HouseholdId: household}},
			Event:  notification(text),
		}))
		if err != nil {
			t.Fatal(err)
		}
	}
	// Broadcast reaches everyone on every node.
	if _, err := svc.Publish(ctx, connect.NewRequest(&realtimev1.PublishRequest{
		Target: &realtimev1.Target{To: &realtimev1.Target_Broadcast_{Broadcast: &realtimev1.Target_Broadcast{}}},
		Event:  notification("h180"),
	})); err != nil {
		t.Fatal(err)
	}
	for i, r := range home {
		r.waitEvents(t, 181, 10*time.Second)
		checkSequence(t, fmt.Sprint("member on node ", i+1), r.got(), "h", 181)
	}
	neighbour.waitEvents(t, 21, 10*time.Second)
	got := neighbour.got()
	checkSequence(t, "neighbour", got[:20], "n", 20)
	if got[20] != "h180" {
		t.Errorf("neighbour's last event is %q, want the broadcast", got[20])
	}
	time.Sleep(100 * time.Millisecond)
	if extra := len(neighbour.got()); extra != 21 {
		t.Errorf("neighbour got %d events, want 21: another household's events leaked", extra)
	}
}

// TestNATSServerLossUnderLoad: a three-server NATS cluster with the stream
// replicated three times; the server leading the stream stops (as a crash
// would: no leadership hand-over) while events flow. Subscribers on two
// realtimed nodes get every acknowledged event once, in order.
func TestNATSServerLossUnderLoad(t *testing.T) {
	t.Parallel()
	nc := natstest.StartCluster(t, 3)
	key := NewDevKey(t)
	nodes := startNodes(t, 2, NodeConfig{NATSURL: nc.URLs(), Key: key, Replicas: 3})
	var readers []*reader
	for i, node := range nodes {
		for j := range 2 {
			readers = append(readers, startReader(t, node.URL(), key, fmt.Sprintf("u%d-%d", i, j), "home"))
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const total = 300
	pub := startPublisher(ctx, nodes[0].Broker, "home", "e", total, 5*time.Millisecond)
	pub.waitAcked(t, 80, 10*time.Second)

	leader := streamLeader(t, nc.Nodes[0].URL())
	var stopped *natstest.NATS
	for _, s := range nc.Nodes {
		if s.Name() == leader {
			stopped = s
		}
	}
	if stopped == nil {
		t.Fatalf("no server named %q leads the stream", leader)
	}
	stopped.Stop()
	t.Logf("stopped NATS server %s (stream leader) after %d events", leader, func() int { a, _ := pub.progress(); return a }())

	select {
	case <-pub.done:
	case <-time.After(40 * time.Second):
		a, f := pub.progress()
		t.Fatalf("publisher stuck: %d acknowledged, %d failed attempts", a, f)
	}
	_, failures := pub.progress()
	t.Logf("publisher retried %d times during the failover", failures)
	for _, r := range readers {
		r.waitEvents(t, total, 20*time.Second)
	}
	time.Sleep(100 * time.Millisecond)
	for _, r := range readers {
		checkSequence(t, r.name, r.got(), "e", total)
	}
}

// streamLeader names the NATS server that leads the default stream.
func streamLeader(t *testing.T, url string) string {
	t.Helper()
	conn, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	js, err := jetstream.New(conn)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(context.Background(), "HONEYDO_REALTIME")
	if err != nil {
		t.Fatal(err)
	}
	info := s.CachedInfo()
	if info.Cluster == nil || info.Cluster.Leader == "" {
		t.Fatal("stream has no leader")
	}
	return info.Cluster.Leader
}

// TestKillNodeUnderFlow: three realtimed nodes behind a plain round-robin
// balancer; one dies abruptly while events flow. Its clients reconnect
// through the balancer to the other nodes with their cursors and miss
// nothing, and see nothing twice.
func TestKillNodeUnderFlow(t *testing.T) {
	t.Parallel()
	n := natstest.Start(t)
	key := NewDevKey(t)
	nodes := startNodes(t, 3, NodeConfig{NATSURL: n.URL(), Key: key})
	lb := StartBalancer(t, nodes[0].Addr(), nodes[1].Addr(), nodes[2].Addr())
	var readers []*reader
	for i := range 6 {
		readers = append(readers, startReader(t, lb.URL(), key, fmt.Sprint("u", i), "home"))
	}
	victim := nodes[2]
	if victim.OpenStreams() == 0 {
		t.Fatalf("the balancer sent no stream to %v", victim)
	}
	onVictim := victim.OpenStreams()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const total = 400
	// The publisher is a backend on node 1, which stays up.
	pub := startPublisher(ctx, nodes[0].Broker, "home", "k", total, 3*time.Millisecond)
	pub.waitAcked(t, 100, 10*time.Second)
	victim.Kill()
	t.Logf("killed %v with %d open streams", victim, onVictim)

	select {
	case <-pub.done:
	case <-time.After(20 * time.Second):
		t.Fatal("publisher did not finish")
	}
	resumed := 0
	for _, r := range readers {
		r.waitEvents(t, total, 15*time.Second)
		r.mu.Lock()
		resumed += r.resumed
		if r.resyncs > 0 {
			t.Errorf("reader %s was told to resync", r.name)
		}
		r.mu.Unlock()
	}
	time.Sleep(100 * time.Millisecond)
	for _, r := range readers {
		checkSequence(t, r.name, r.got(), "k", total)
	}
	if resumed < onVictim {
		t.Errorf("%d readers resumed on another node, want at least %d", resumed, onVictim)
	}
}

// TestRestartOnlyNode: with the NATS backend, history outlives realtimed:
// after a restart of the only node, clients resume (RESUMED) and get what
// was published while it was down — unlike the memory backend.
func TestRestartOnlyNode(t *testing.T) {
	t.Parallel()
	n := natstest.Start(t)
	key := NewDevKey(t)
	node := StartNode(t, NodeConfig{Name: "rt1", NATSURL: n.URL(), Key: key})
	r := startReader(t, node.URL(), key, "alice", "home")
	svc := serviceClient(node.URL(), key)
	publishN := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			_, err := svc.Publish(context.Background(), connect.NewRequest(&realtimev1.PublishRequest{
				Target: &realtimev1.Target{To: &realtimev1.Target_HouseholdId{HouseholdId: "home"}},
				Event:  notification("r" + strconv.Itoa(i)),
			}))
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	publishN(0, 10)
	r.waitEvents(t, 10, 5*time.Second)

	node.Stop()
	// Another service instance (its own broker on the same stream) keeps
	// publishing while realtimed is down.
	other := StartNode(t, NodeConfig{Name: "publisher", NATSURL: n.URL(), Key: key})
	for i := 10; i < 15; i++ {
		if _, err := other.Broker.Publish(context.Background(), householdTarget("home"), notification("r"+strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	node.Restart()
	r.waitUntil(t, 10*time.Second, func() bool { return r.connects >= 2 }, "reconnect")
	r.mu.Lock()
	w := r.lastWelcome
	r.mu.Unlock()
	if w.GetResume() != realtimev1.ResumeStatus_RESUME_STATUS_RESUMED {
		t.Fatalf("welcome after restart: resume = %v, want RESUMED", w.GetResume())
	}
	publishN(15, 20)
	r.waitEvents(t, 20, 10*time.Second)
	checkSequence(t, "alice", r.got(), "r", 20)
}

// TestNATSDown: with NATS gone, Publish answers Unavailable (no silent
// drop); when NATS is back the same node publishes again and open streams
// receive the events.
func TestNATSDown(t *testing.T) {
	t.Parallel()
	n := natstest.Start(t)
	key := NewDevKey(t)
	node := StartNode(t, NodeConfig{Name: "rt1", NATSURL: n.URL(), Key: key})
	r := startReader(t, node.URL(), key, "alice", "home")
	svc := serviceClient(node.URL(), key)
	publish := func(text string) error {
		_, err := svc.Publish(context.Background(), connect.NewRequest(&realtimev1.PublishRequest{
			Target: &realtimev1.Target{To: &realtimev1.Target_HouseholdId{HouseholdId: "home"}},
			Event:  notification(text),
		}))
		return err
	}
	if err := publish("d0"); err != nil {
		t.Fatal(err)
	}
	n.Stop()
	start := time.Now()
	if err := publish("lost"); connect.CodeOf(err) != connect.CodeUnavailable {
		t.Fatalf("Publish with NATS down: %v, want Unavailable", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Publish took %v to fail", d)
	}
	n.Start(t)
	poll.Eventually(t, 15*time.Second, 50*time.Millisecond, func() error { return publish("d1") })
	if err := publish("d2"); err != nil {
		t.Fatal(err)
	}
	r.waitEvents(t, 3, 15*time.Second)
	checkSequence(t, "alice", r.got(), "d", 3)
}
