package benchapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/honeydo/realtime/client"
	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	"github.com/honeydo/realtime/gen/honeydo/realtime/v1/realtimev1connect"
	"github.com/honeydo/realtime/internal/auth"
	"github.com/honeydo/realtime/internal/broker"
	"github.com/honeydo/realtime/internal/server"
	"github.com/honeydo/realtime/internal/testkit"
)

// stream is a Subscribe stream that a test reads event by event.
type stream struct {
	t       *testing.T
	s       *connect.ServerStreamForClient[realtimev1.SubscribeResponse]
	pending []*realtimev1.Event
}

// subscribe opens a stream with token and waits for its welcome frame; the
// stream is closed when the test ends.
func subscribe(t *testing.T, url, token string) *stream {
	t.Helper()
	c := realtimev1connect.NewRealtimeServiceClient(testkit.HTTPClient(t, false), url, client.BearerToken(token))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s, err := c.Subscribe(ctx, connect.NewRequest(&realtimev1.SubscribeRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if !s.Receive() || s.Msg().GetWelcome() == nil {
		t.Fatalf("no welcome: %v %v", s.Msg(), s.Err())
	}
	return &stream{t: t, s: s}
}

// next returns the stream's next event, skipping heartbeats. The server
// ends an idle stream only at its token's expiry, so a missing event fails
// the test then rather than hanging it.
func (s *stream) next() *realtimev1.Event {
	s.t.Helper()
	for len(s.pending) == 0 {
		if !s.s.Receive() {
			s.t.Fatalf("stream ended: %v", s.s.Err())
		}
		s.pending = s.s.Msg().GetEvents().GetEvents()
	}
	ev := s.pending[0]
	s.pending = s.pending[1:]
	return ev
}

func TestBenchAPI(t *testing.T) {
	srv := testkit.StartServer(t, func(c *server.Config) { c.BenchAPI = true })
	tok, _, err := srv.Key.Mint(auth.MintOptions{UserID: "0", HouseholdID: "0", TTL: time.Minute, ExtraRooms: []string{"room:bench"}})
	if err != nil {
		t.Fatal(err)
	}
	s := subscribe(t, srv.URL, tok)
	res, err := http.Get(srv.URL + "/bench/info")
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Peer       string
		Pid, Conns int
	}
	json.NewDecoder(res.Body).Decode(&info)
	res.Body.Close()
	if info.Peer != "realtimed" || info.Pid == 0 || info.Conns != 1 {
		t.Fatalf("info = %+v", info)
	}
	for _, body := range []string{
		`{"mode":"room","room":"bench","rate":1000,"duration_ms":50,"size":200}`,
		`{"mode":"users","users":1,"rate":1000,"duration_ms":50,"size":200}`,
	} {
		res, err := http.Post(srv.URL+"/bench/publish", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var pub struct {
			Published, Errors int64
		}
		json.NewDecoder(res.Body).Decode(&pub)
		res.Body.Close()
		if pub.Published != 50 || pub.Errors != 0 {
			t.Fatalf("%s: %+v", body, pub)
		}
		for i := range pub.Published {
			ev := s.next()
			p := ev.GetProbe()
			if p == nil || p.GetSeq() != uint64(i) || len(ev.GetCursor()) == 0 {
				t.Fatalf("event %d: %v", i, ev)
			}
		}
	}
	res, err = http.Post(srv.URL+"/bench/gc", "application/json", bytes.NewReader(nil))
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("gc: %v %v", res, err)
	}
}

// TestBenchAPIRefusesBrowsers: "loopback callers" must not include a web
// page open in the developer's browser. A cross-site form or fetch can send
// a text/plain POST without a CORS preflight, and a DNS-rebound page reaches
// 127.0.0.1 under its own host name; sizes that would exhaust memory are
// refused before anything is allocated.
func TestBenchAPIRefusesBrowsers(t *testing.T) {
	srv := testkit.StartServer(t, func(c *server.Config) { c.BenchAPI = true })
	body := `{"mode":"room","room":"bench","rate":1000,"duration_ms":20,"size":200}`
	for _, c := range []struct {
		name, method, path, contentType, host, body string
		want                                        int
	}{
		{"cross-site form post", "POST", "/bench/publish", "text/plain", "", body, http.StatusUnsupportedMediaType},
		{"cross-site gc", "POST", "/bench/gc", "application/x-www-form-urlencoded", "", "", http.StatusUnsupportedMediaType},
		{"rebound host", "GET", "/bench/info", "", "evil.example:8080", "", http.StatusForbidden},
		{"rebound host publish", "POST", "/bench/publish", "application/json", "evil.example", body, http.StatusForbidden},
		{"huge size", "POST", "/bench/publish", "application/json", "", `{"rate":1,"duration_ms":1,"size":67108864}`, http.StatusBadRequest},
		{"huge users", "POST", "/bench/publish", "application/json", "", `{"mode":"users","users":100000000,"rate":1,"duration_ms":1}`, http.StatusBadRequest},
		{"too many publishers", "POST", "/bench/publish", "application/json", "", `{"rate":1,"duration_ms":1,"publishers":100000}`, http.StatusBadRequest},
		{"localhost host", "GET", "/bench/info", "", "localhost", "", http.StatusOK},
	} {
		req, err := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		if c.contentType != "" {
			req.Header.Set("Content-Type", c.contentType)
		}
		if c.host != "" {
			req.Host = c.host
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != c.want {
			t.Errorf("%s: status %d, want %d", c.name, res.StatusCode, c.want)
		}
	}
}

// overlapBroker passes publishes on to the server's broker and records
// how many were in flight at once and the probes' Seq. Until two overlap
// (or 10 s have passed) each Publish waits, so that publishers that run
// concurrently are seen to, however fast the broker.
type overlapBroker struct {
	broker.Broker
	inFlight, maxInFlight atomic.Int64
	overlapped            chan struct{}
	once                  sync.Once
	mu                    sync.Mutex
	seqs                  map[uint64]int
}

func (b *overlapBroker) Publish(ctx context.Context, target broker.Target, ev *realtimev1.Event) (*broker.Message, error) {
	n := b.inFlight.Add(1)
	defer b.inFlight.Add(-1)
	for m := b.maxInFlight.Load(); n > m && !b.maxInFlight.CompareAndSwap(m, n); m = b.maxInFlight.Load() {
	}
	if n >= 2 {
		b.once.Do(func() { close(b.overlapped) })
	}
	select {
	case <-b.overlapped:
	case <-time.After(10 * time.Second):
		b.once.Do(func() { close(b.overlapped) }) // a lone publisher: stop holding it up
	case <-ctx.Done():
	}
	b.mu.Lock()
	b.seqs[ev.GetProbe().GetSeq()]++
	b.mu.Unlock()
	return b.Broker.Publish(ctx, target, ev)
}

// TestBenchAPIPublishers: "publishers" shares the rate between concurrent
// publishers (a JetStream publish waits for its ack, so one publisher
// cannot offer W4's rate); together they publish what one would, with
// distinct Seq.
func TestBenchAPIPublishers(t *testing.T) {
	ob := &overlapBroker{overlapped: make(chan struct{}), seqs: map[uint64]int{}}
	srv := testkit.StartServer(t, func(c *server.Config) {
		c.BenchAPI = true
		ob.Broker = c.Broker
		c.Broker = ob
	})
	body := `{"mode":"users","users":4,"rate":400,"duration_ms":250,"size":200,"publishers":4}`
	res, err := http.Post(srv.URL+"/bench/publish", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var pub struct {
		Published, Errors int64
	}
	json.NewDecoder(res.Body).Decode(&pub)
	res.Body.Close()
	if pub.Published != 100 || pub.Errors != 0 {
		t.Fatalf("published %d, errors %d; want 100, 0", pub.Published, pub.Errors)
	}
	if m := ob.maxInFlight.Load(); m < 2 {
		t.Fatalf("at most %d publish in flight at once: the publishers did not run concurrently", m)
	}
	ob.mu.Lock()
	defer ob.mu.Unlock()
	for i := range uint64(100) {
		if ob.seqs[i] != 1 {
			t.Errorf("seq %d published %d times, want once (seqs: %v)", i, ob.seqs[i], ob.seqs)
			break
		}
	}
}
