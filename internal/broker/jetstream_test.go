package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	"github.com/honeydo/realtime/internal/room"
	"github.com/honeydo/realtime/internal/testkit/natstest"
	"github.com/honeydo/realtime/internal/testkit/poll"
	"github.com/honeydo/realtime/internal/testkit/syncbuf"
)

func TestJetStream(t *testing.T) {
	t.Parallel()
	n := natstest.Start(t)
	brokerSuite(t, func(t *testing.T) Broker {
		return newTestJetStream(t, n.URL(), JetStreamConfig{})
	})
}

// streamOf returns a JetStream handle on n for inspecting streams.
func streamOf(t *testing.T, url, name string) jetstream.Stream {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestJetStreamCreatesStreamWithLimits(t *testing.T) {
	t.Parallel()
	n := natstest.Start(t)
	cfg := JetStreamConfig{Stream: "LIMITS", SubjectPrefix: "lim", History: HistoryLimits{MaxAge: time.Minute, MaxEvents: 500, MaxBytes: 1 << 20}}
	j := newTestJetStream(t, n.URL(), cfg)
	info, err := streamOf(t, n.URL(), "LIMITS").Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c := info.Config
	if c.MaxAge != time.Minute || c.MaxMsgs != 500 || c.MaxBytes != 1<<20 || c.Replicas != 1 || len(c.Subjects) != 1 || c.Subjects[0] != "lim.>" {
		t.Fatalf("stream config = %+v", c)
	}
	epoch := j.Epoch()
	j.Close()

	// A restart with other limits updates the stream and keeps its identity.
	cfg.History.MaxAge = 3 * time.Minute
	j2 := newTestJetStream(t, n.URL(), cfg)
	info, err = streamOf(t, n.URL(), "LIMITS").Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.MaxAge != 3*time.Minute {
		t.Fatalf("MaxAge = %v after update", info.Config.MaxAge)
	}
	if j2.Epoch() != epoch {
		t.Fatalf("epoch changed on update: %s -> %s", epoch, j2.Epoch())
	}
}

// TestJetStreamRestartKeepsEpoch: a new broker on the same stream (a
// restarted realtimed) resumes old cursors; a recreated stream does not.
func TestJetStreamRestartKeepsEpoch(t *testing.T) {
	t.Parallel()
	n := natstest.Start(t)
	cfg := JetStreamConfig{Stream: "RESTART", SubjectPrefix: "rs"}
	home := room.Household("home")
	first := newTestJetStream(t, n.URL(), cfg)
	var cursor Position
	for i := range 5 {
		m := publish(t, first, Target{Room: home}, fmt.Sprint(i))
		if i == 1 {
			cursor = m.Position
		}
	}
	first.Close()

	second := newTestJetStream(t, n.URL(), cfg)
	if second.Epoch() != first.Epoch() {
		t.Fatalf("epoch %s after restart, was %s", second.Epoch(), first.Epoch())
	}
	s := subscribe(t, second, "u", []room.Name{home}, &cursor)
	if s.Resume != ResumeOK {
		t.Fatalf("Resume = %v", s.Resume)
	}
	publish(t, second, Target{Room: home}, "5")
	if got := collect(t, s, 4, 5*time.Second); fmt.Sprint(got) != "[2 3 4 5]" {
		t.Fatalf("got %v", got)
	}
	second.Close()

	if err := streamOf(t, n.URL(), "RESTART").Purge(context.Background()); err != nil {
		t.Fatal(err)
	}
	nc, _ := nats.Connect(n.URL())
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if err := js.DeleteStream(context.Background(), "RESTART"); err != nil {
		t.Fatal(err)
	}
	// nats-server removes a deleted stream's store after answering the
	// delete; on a busy machine, creating the stream again at once can
	// still find it ("error creating store for stream"). A node starting
	// then would fail and be restarted; the test retries the same way.
	var third *JetStream
	cfg.URL = n.URL()
	cfg.Logger = jsTestLogger(t)
	poll.Eventually(t, 30*time.Second, 100*time.Millisecond, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		j, err := NewJetStream(ctx, cfg)
		if err != nil {
			return err
		}
		third = j
		return nil
	})
	t.Cleanup(func() { third.Close() })
	if third.Epoch() == first.Epoch() {
		t.Fatal("a recreated stream kept the epoch")
	}
	s = subscribe(t, third, "u", []room.Name{home}, &cursor)
	if s.Resume != ResumeEpochChanged {
		t.Fatalf("Resume = %v, want epoch_changed", s.Resume)
	}
}

// TestJetStreamAcrossNodes: two brokers on one stream are two realtimed
// nodes: events cross, cursors resume on either.
func TestJetStreamAcrossNodes(t *testing.T) {
	t.Parallel()
	n := natstest.Start(t)
	cfg := JetStreamConfig{Stream: "NODES", SubjectPrefix: "nodes"}
	a := newTestJetStream(t, n.URL(), cfg)
	b := newTestJetStream(t, n.URL(), cfg)
	home := room.Household("home")
	onA := subscribe(t, a, "u1", []room.Name{home}, nil)
	onB := subscribe(t, b, "u2", []room.Name{home}, nil)
	var last *Message
	for i := range 50 {
		last = publish(t, a, Target{Room: home}, fmt.Sprint(i))
	}
	for _, s := range []*Subscription{onA, onB} {
		if got := collect(t, s, 50, 5*time.Second); len(got) != 50 || got[0] != "0" || got[49] != "49" {
			t.Fatalf("got %v", got)
		}
	}
	// A cursor from node a, just published, resumes on node b even if b's
	// consumer has not caught up yet.
	pos := last.Position
	pos.Offset -= 3
	r := subscribe(t, b, "u2", []room.Name{home}, &pos)
	if r.Resume != ResumeOK {
		t.Fatalf("Resume = %v", r.Resume)
	}
	if got := collect(t, r, 3, 5*time.Second); fmt.Sprint(got) != "[47 48 49]" {
		t.Fatalf("got %v", got)
	}
	future := Position{Epoch: a.Epoch(), Offset: last.Position.Offset + 100}
	if _, err := b.Subscribe(context.Background(), SubscribeOptions{UserID: "u", Rooms: []room.Name{home}, Since: &future}); !errors.Is(err, ErrInvalidCursor) {
		t.Fatalf("future cursor: %v", err)
	}
}

// TestJetStreamOneConsumerPerNode: browser streams cost no NATS consumers.
func TestJetStreamOneConsumerPerNode(t *testing.T) {
	t.Parallel()
	n := natstest.Start(t)
	cfg := JetStreamConfig{Stream: "FANOUT", SubjectPrefix: "fan"}
	j := newTestJetStream(t, n.URL(), cfg)
	for i := range 200 {
		subscribe(t, j, fmt.Sprint("u", i), []room.Name{room.User(fmt.Sprint("u", i)), room.Household(fmt.Sprint(i % 7)), room.Broadcast}, nil)
	}
	publish(t, j, Target{Room: room.Broadcast}, "x")
	info, err := streamOf(t, n.URL(), "FANOUT").Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Consumers != 1 {
		t.Fatalf("%d consumers for 200 subscriptions, want 1", info.State.Consumers)
	}
}

func TestJetStreamResumeExpired(t *testing.T) {
	t.Parallel()
	n := natstest.Start(t)
	j := newTestJetStream(t, n.URL(), JetStreamConfig{History: HistoryLimits{MaxEvents: 10}})
	home := room.Household("home")
	first := publish(t, j, Target{Room: home}, "0")
	for i := 1; i < 30; i++ {
		publish(t, j, Target{Room: home}, fmt.Sprint(i))
	}
	// With a window this small a busy machine's node consumer can fall
	// out of it (its live streams then end, as they must); let it settle.
	poll.Eventually(t, 10*time.Second, 10*time.Millisecond, func() error {
		if h := j.Stats().Head.Offset; h != 30 {
			return fmt.Errorf("node delivered up to %d", h)
		}
		return nil
	})
	since := first.Position
	s := subscribe(t, j, "u", []room.Name{home}, &since)
	if s.Resume != ResumeExpired {
		t.Fatalf("Resume = %v, want expired", s.Resume)
	}
	publish(t, j, Target{Room: home}, "live")
	// After an expired resume the stream goes on from its Start, the
	// position whose cursor the welcome frame gives the client.
	var want []string
	for seq := s.Start.Offset + 1; seq <= 30; seq++ {
		want = append(want, fmt.Sprint(seq-1))
	}
	want = append(want, "live")
	if got := collect(t, s, len(want), 5*time.Second); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v (start %d)", got, want, s.Start.Offset)
	}
	// Within the window the resume succeeds.
	ok := Position{Epoch: j.Epoch(), Offset: 25}
	s2 := subscribe(t, j, "u", []room.Name{home}, &ok)
	if s2.Resume != ResumeOK {
		t.Fatalf("Resume = %v", s2.Resume)
	}
	if got := collect(t, s2, 6, 5*time.Second); fmt.Sprint(got) != "[25 26 27 28 29 live]" {
		t.Fatalf("got %v", got)
	}
}

// TestJetStreamNATSDown: with NATS gone Ready says so, and Publish and
// Subscribe fail with ErrUnavailable at once; when it is back Ready says so
// again, the same broker works again and live subscriptions go on.
func TestJetStreamNATSDown(t *testing.T) {
	t.Parallel()
	n := natstest.Start(t)
	j := newTestJetStream(t, n.URL(), JetStreamConfig{})
	home := room.Household("home")
	live := subscribe(t, j, "u", []room.Name{home}, nil)
	publish(t, j, Target{Room: home}, "before")
	if _, err := j.Ready(); err != nil {
		t.Fatalf("Ready with NATS up: %v", err)
	}
	n.Stop()
	if err := waitReadiness(t, j, false, 10*time.Second); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Ready with NATS down = %v, want ErrUnavailable", err)
	}

	start := time.Now()
	if _, err := j.Publish(context.Background(), Target{Room: home}, note("during")); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Publish with NATS down: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Publish took %v to fail", d)
	}
	if _, err := j.Subscribe(context.Background(), SubscribeOptions{UserID: "v", Rooms: []room.Name{home}}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Subscribe with NATS down: %v", err)
	}

	n.Start(t)
	waitReadiness(t, j, true, 15*time.Second)
	poll.Eventually(t, 10*time.Second, 50*time.Millisecond, func() error {
		_, err := j.Publish(context.Background(), Target{Room: home}, note("after"))
		return err
	})
	if got := collect(t, live, 2, 10*time.Second); fmt.Sprint(got) != "[before after]" {
		t.Fatalf("live subscription got %v", got)
	}
}

// TestJetStreamReadyFollowsTheStream: with the NATS connection up but the
// stream unusable (deleted, and its subjects taken by another stream so
// that it cannot be recreated), Ready says unavailable; once the stream can
// be recreated, Ready says ready again and the broker works.
func TestJetStreamReadyFollowsTheStream(t *testing.T) {
	t.Parallel()
	n := natstest.Start(t)
	j := newTestJetStream(t, n.URL(), JetStreamConfig{})
	home := room.Household("home")
	publish(t, j, Target{Room: home}, "before")

	nc, err := nats.Connect(n.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	squatter := jetstream.StreamConfig{Name: j.cfg.Stream + "_SQUATTER", Subjects: []string{j.prefix + ".>"}, Storage: jetstream.MemoryStorage}
	// The broker recreates a deleted stream as soon as it notices; the
	// squatter must take the subjects in between, so delete and squat again
	// until it has.
	poll.Eventually(t, 30*time.Second, 10*time.Millisecond, func() error {
		if err := js.DeleteStream(ctx, j.cfg.Stream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return err
		}
		_, err := js.CreateStream(ctx, squatter)
		return err
	})
	if err := waitReadiness(t, j, false, 15*time.Second); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Ready without a usable stream = %v, want ErrUnavailable", err)
	}
	if !j.nc.IsConnected() {
		t.Fatal("the test meant to keep the connection up")
	}

	if err := js.DeleteStream(ctx, squatter.Name); err != nil {
		t.Fatal(err)
	}
	waitReadiness(t, j, true, 15*time.Second)
	live := subscribe(t, j, "u", []room.Name{home}, nil)
	publish(t, j, Target{Room: home}, "after")
	if got := collect(t, live, 1, 10*time.Second); fmt.Sprint(got) != "[after]" {
		t.Fatalf("live subscription got %v", got)
	}
}

// TestJetStreamNodeCatchesUp: a node cut off from NATS while another node
// publishes delivers the missed events to its live subscriptions when it is
// back, in order; if they left the stream meanwhile, its streams end with
// ErrUnavailable instead (and the resume says expired).
func TestJetStreamNodeCatchesUp(t *testing.T) {
	t.Parallel()
	n := natstest.Start(t)
	proxy := newTCPProxy(t, n.Addr())
	cfg := JetStreamConfig{Stream: "CATCHUP", SubjectPrefix: "cu", History: HistoryLimits{MaxEvents: 100}}
	a := newTestJetStream(t, n.URL(), cfg)
	b := newTestJetStream(t, proxy.URL(), cfg)
	home := room.Household("home")
	live := subscribe(t, b, "u", []room.Name{home}, nil)

	proxy.cut()
	for i := range 50 {
		publish(t, a, Target{Room: home}, fmt.Sprint(i))
	}
	proxy.heal()
	got := collect(t, live, 50, 15*time.Second)
	if len(got) != 50 || got[0] != "0" || got[49] != "49" {
		t.Fatalf("after the outage the live subscription got %d events: %v", len(got), got)
	}

	// Now an outage during which more than the history limit is published.
	proxy.cut()
	var last Position
	for i := range 250 {
		last = publish(t, a, Target{Room: home}, fmt.Sprint("x", i)).Position
	}
	proxy.heal()
	select {
	case <-live.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("live subscription not ended after losing events")
	}
	if !errors.Is(live.Err(), ErrUnavailable) {
		t.Fatalf("Err = %v, want ErrUnavailable", live.Err())
	}
	cursor := Position{Epoch: b.Epoch(), Offset: last.Offset - 249 - 1}
	var s *Subscription
	poll.Eventually(t, 10*time.Second, 50*time.Millisecond, func() error {
		var err error
		s, err = b.Subscribe(context.Background(), SubscribeOptions{UserID: "u", Rooms: []room.Name{home}, Since: &cursor})
		return err
	})
	defer s.Close()
	if s.Resume != ResumeExpired {
		t.Fatalf("Resume = %v, want expired", s.Resume)
	}
}

// TestJetStreamIdempotentPublish: an event whose id the caller set is stored
// once however often it is published to the same target, so a caller may
// retry after Unavailable without duplicating it.
func TestJetStreamIdempotentPublish(t *testing.T) {
	t.Parallel()
	n := natstest.Start(t)
	j := newTestJetStream(t, n.URL(), JetStreamConfig{})
	home := room.Household("home")
	s := subscribe(t, j, "u", []room.Name{home, room.User("u")}, nil)
	withID := func(id, text string) *realtimev1.Event {
		ev := note(text)
		ev.Id = id
		return ev
	}
	first, err := j.Publish(context.Background(), Target{Room: home}, withID("evt-1", "a"))
	if err != nil {
		t.Fatal(err)
	}
	again, err := j.Publish(context.Background(), Target{Room: home}, withID("evt-1", "a"))
	if err != nil {
		t.Fatal(err)
	}
	if again.Position != first.Position {
		t.Fatalf("retry stored at %v, first at %v", again.Position, first.Position)
	}
	// The same id to another target is another event.
	if _, err := j.Publish(context.Background(), Target{Room: room.User("u")}, withID("evt-1", "b")); err != nil {
		t.Fatal(err)
	}
	if got := collect(t, s, 2, 5*time.Second); fmt.Sprint(got) != "[a b]" {
		t.Fatalf("got %v", got)
	}
	assertQuiet(t, s)
}

func TestRoomSubjects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name room.Name
		want string
	}{
		{room.Broadcast, "p.broadcast"},
		{room.User("user_2abcXYZ"), "p.user.user_2abcXYZ"},
		{room.Household("org_1"), "p.household.org_1"},
		{room.User("a.b*c>d e"), "p.user.a~2eb~2ac~3ed~20e"},
		{room.User(""), "p.user.~"},
		{room.User("~"), "p.user.~7e"},
		{room.Name("team:kitchen"), "p.room.team~3akitchen"},
		{room.Name("broadcast2"), "p.room.broadcast2"},
	}
	for _, tt := range tests {
		got := roomSubject("p", tt.name)
		if got != tt.want {
			t.Errorf("roomSubject(%q) = %q, want %q", tt.name, got, tt.want)
		}
		back, err := subjectRoom("p", got)
		if err != nil || back != tt.name {
			t.Errorf("subjectRoom(%q) = %q, %v; want %q", got, back, err, tt.name)
		}
	}
	for _, bad := range []string{"q.user.x", "p.user", "p.user.a~2", "p.user.a~41", "p.other.x", "p.user.a.b", "p.user.A~2E"} {
		if r, err := subjectRoom("p", bad); err == nil {
			t.Errorf("subjectRoom(%q) = %q, want an error", bad, r)
		}
	}
}

func FuzzRoomSubject(f *testing.F) {
	for _, s := range []string{"user:a", "household:x.y", "broadcast", "", "user:", "~", "a b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		subj := roomSubject("honeydo.rt", room.Name(s))
		back, err := subjectRoom("honeydo.rt", subj)
		if err != nil || back != room.Name(s) {
			t.Fatalf("%q -> %q -> %q, %v", s, subj, back, err)
		}
		for _, tok := range []string{" ", "*", ">", "\t", "\n", ".."} {
			if strings.Contains(subj, tok) {
				t.Fatalf("subject %q holds %q", subj, tok)
			}
		}
	})
}

func TestNATSAuthOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		auth    NATSAuth
		n       int
		wantErr bool
	}{
		{"none", NATSAuth{}, 0, false},
		{"user", NATSAuth{User: "u", Password: "p"}, 1, false},
		{"token", NATSAuth{Token: "t"}, 1, false},
		{"creds and tls", NATSAuth{CredsFile: "x.creds", TLSCA: "ca.pem", TLSCert: "c.pem", TLSKey: "k.pem"}, 3, false},
		{"two methods", NATSAuth{Token: "t", User: "u", Password: "p"}, 0, true},
		{"user without password", NATSAuth{User: "u"}, 0, true},
		{"cert without key", NATSAuth{TLSCert: "c.pem"}, 0, true},
	}
	for _, tt := range tests {
		opts, err := tt.auth.Options()
		if (err != nil) != tt.wantErr || len(opts) != tt.n {
			t.Errorf("%s: %d options, err %v", tt.name, len(opts), err)
		}
	}
}

func TestJetStreamAuthenticates(t *testing.T) {
	t.Parallel()
	n := natstest.Start(t)
	n.Stop()
	n.Options().Username, n.Options().Password = "realtimed", "s3cret"
	n.Start(t)
	if _, err := NewJetStream(context.Background(), JetStreamConfig{URL: n.URL(), Logger: jsTestLogger(t)}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("without credentials: %v", err)
	}
	opts, err := NATSAuth{User: "realtimed", Password: "s3cret"}.Options()
	if err != nil {
		t.Fatal(err)
	}
	j := newTestJetStream(t, n.URL(), JetStreamConfig{Options: opts})
	publish(t, j, Target{Room: room.Broadcast}, "x")
}

// TestJetStreamCloseIsNotAnOutage: closing the broker closes its connection
// without logging the outage warning ("disconnected from NATS;
// reconnecting") that operators would otherwise see on every clean
// shutdown.
func TestJetStreamCloseIsNotAnOutage(t *testing.T) {
	t.Parallel()
	n := natstest.Start(t)
	var logs syncbuf.Buffer
	closed := make(chan struct{})
	j := newTestJetStream(t, n.URL(), JetStreamConfig{
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
		// The client runs its handlers in order on one goroutine: once the
		// closed handler ran, so did any disconnect handler.
		Options: []nats.Option{nats.ClosedHandler(func(*nats.Conn) { close(closed) })},
	})
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("connection not closed")
	}
	if s := logs.String(); strings.Contains(s, "reconnecting") {
		t.Fatalf("Close logged an outage:\n%s", s)
	}
}
