package client_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/honeydo/realtime/client"
	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	"github.com/honeydo/realtime/internal/auth"
	"github.com/honeydo/realtime/internal/server"
	"github.com/honeydo/realtime/internal/testkit"
	"github.com/honeydo/realtime/internal/testkit/poll"
)

// fast is a backoff for tests: reconnections in tens of milliseconds.
var fast = client.Backoff{Initial: 20 * time.Millisecond, Max: 100 * time.Millisecond}

func TestSubscribeEveryProtocol(t *testing.T) {
	for _, pc := range protocolCases {
		t.Run(pc.name, func(t *testing.T) {
			checkGoroutines(t)
			srv := newTestServer(t)
			var st statuses
			rec := &recorder{}
			run := start(t, client.Options{
				BaseURL:    srv.URL,
				HTTPClient: testkit.HTTPClient(t, pc.h2c),
				Protocol:   pc.protocol,
				Token:      srv.tokens("alice", time.Minute).Token,
				OnStatus:   st.OnStatus,
			}, rec.Handle)
			st.waitState(t, client.StateConnected, 1)
			w := st.all()[0]
			if w.Welcome.GetUserId() != "alice" || w.Welcome.GetHouseholdId() != "home" || w.Reconnected || w.Resumed {
				t.Fatalf("first status: %+v", w)
			}
			if w.Cursor == "" || w.Cursor != w.Welcome.GetCursor() {
				t.Fatalf("status cursor %q, welcome cursor %q", w.Cursor, w.Welcome.GetCursor())
			}
			var ids []string
			for i := range 5 {
				ids = append(ids, srv.publish(t, "home", fmt.Sprint("hello ", i)))
			}
			srv.publish(t, "elsewhere", "not for alice")
			exactlyOnce(t, srv, rec, ids)
			run.stop(t)
			if n := st.count(client.StateReconnecting); n != 0 {
				t.Fatalf("%d reconnections on a healthy stream: %s", n, describe(st.all()))
			}
		})
	}
}

// TestResumeAcrossConnectionCuts cuts the TCP connection three times while
// events flow: every event arrives exactly once, in order, each reconnect
// resumes, and nothing asks for a resync.
func TestResumeAcrossConnectionCuts(t *testing.T) {
	for _, pc := range protocolCases {
		t.Run(pc.name, func(t *testing.T) {
			checkGoroutines(t)
			srv := newTestServer(t)
			dialer := &conns{}
			var st statuses
			rec := &recorder{}
			start(t, client.Options{
				BaseURL:    srv.URL,
				HTTPClient: dialer.httpClient(t, pc.h2c),
				Protocol:   pc.protocol,
				Token:      srv.tokens("alice", time.Minute).Token,
				Backoff:    fast,
				OnStatus:   st.OnStatus,
				OnResync: func(context.Context, client.ResyncReason) error {
					return errors.New("unexpected resync")
				},
			}, rec.Handle)
			st.waitState(t, client.StateConnected, 1)
			f := startFlow(t, srv, time.Millisecond)
			for i := 1; i <= 3; i++ {
				f.waitCount(t, f.count()+50)
				if n := dialer.cut(); n == 0 {
					t.Fatal("no connection to cut")
				}
				st.waitState(t, client.StateConnected, i+1)
			}
			f.waitCount(t, f.count()+50)
			exactlyOnce(t, srv, rec, f.end())
			for _, s := range st.all()[1:] {
				if s.State == client.StateConnected && (!s.Resumed || !s.Reconnected) {
					t.Fatalf("a reconnection did not resume: %s", describe(st.all()))
				}
			}
			t.Logf("%d events over %d connections", len(rec.snapshot()), dialer.dials)
		})
	}
}

// TestResumeAcrossServerRestart restarts the server with the same broker
// while events flow: streams end with Unavailable, the client backs off,
// comes back and resumes with nothing lost or repeated.
func TestResumeAcrossServerRestart(t *testing.T) {
	checkGoroutines(t)
	srv := newTestServer(t)
	var st statuses
	rec := &recorder{}
	start(t, client.Options{
		BaseURL:    srv.URL,
		HTTPClient: testkit.HTTPClient(t, false),
		Token:      srv.tokens("alice", time.Minute).Token,
		Backoff:    fast,
		OnStatus:   st.OnStatus,
	}, rec.Handle)
	st.waitState(t, client.StateConnected, 1)
	f := startFlow(t, srv, time.Millisecond)
	f.waitCount(t, 50)
	srv.Restart(false)
	st.waitState(t, client.StateConnected, 2)
	f.waitCount(t, f.count()+50)
	exactlyOnce(t, srv, rec, f.end())
	errs := st.reconnectErrs()
	if len(errs) == 0 || connect.CodeOf(errs[0]) != connect.CodeUnavailable {
		t.Fatalf("want the stream to end with Unavailable: %s", describe(st.all()))
	}
	if n := st.count(client.StateResync); n != 0 {
		t.Fatalf("resync after a restart that kept history: %s", describe(st.all()))
	}
}

// TestTokenRotation runs a steady flow over short-lived tokens. With
// renewing (the default) the subscription outlives every token: 2s tokens
// for 30s, one Connected status, no Reconnecting, every event exactly once.
// With renewing off, the server ends the stream at every expiry and the
// client reopens it with a fresh token and its cursor, still losing or
// repeating nothing. So does a user at the per-user stream limit, where
// the server refuses every renewal's second stream.
func TestTokenRotation(t *testing.T) {
	for _, tc := range []struct {
		name       string
		renewLead  time.Duration
		tokenTTL   time.Duration
		grace      time.Duration
		run        time.Duration
		maxStreams int // --max-streams-per-user; 0 for the default
	}{
		{"renewed", 0, 2 * time.Second, time.Second, 30 * time.Second, 0},
		{"reopened", -1, time.Second, 100 * time.Millisecond, 10 * time.Second, 0},
		{"at the stream limit", 0, time.Second, 100 * time.Millisecond, 10 * time.Second, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkGoroutines(t)
			srv := newTestServer(t, func(c *server.Config) {
				c.TokenGrace = tc.grace
				c.MaxStreamsPerUser = tc.maxStreams
			})
			tk := srv.tokens("alice", tc.tokenTTL)
			var st statuses
			rec := &recorder{}
			start(t, client.Options{
				BaseURL:    srv.URL,
				HTTPClient: testkit.HTTPClient(t, false),
				Token:      tk.Token,
				Backoff:    client.Backoff{Initial: 100 * time.Millisecond, Max: 500 * time.Millisecond},
				RenewLead:  tc.renewLead,
				OnStatus:   st.OnStatus,
			}, rec.Handle)
			st.waitState(t, client.StateConnected, 1)
			began := time.Now()
			f := startFlow(t, srv, 5*time.Millisecond)
			time.Sleep(tc.run)
			f.waitCount(t, f.count()+20)
			exactlyOnce(t, srv, rec, f.end())
			expiries := int(tc.run / (tc.tokenTTL + tc.grace))
			if n := tk.calls.Load(); int(n) < expiries {
				t.Fatalf("Token called %d times in %v of %v tokens", n, tc.run, tc.tokenTTL)
			}
			if tc.renewLead >= 0 && tc.maxStreams == 0 {
				if n := st.count(client.StateConnected); n != 1 || st.count(client.StateReconnecting) != 0 {
					t.Fatalf("renewing showed: %s", describe(st.all()))
				}
			} else {
				if n := st.count(client.StateConnected); n < expiries/2 {
					t.Fatalf("only %d streams in %v of %v tokens", n, tc.run, tc.tokenTTL)
				}
				for _, err := range st.reconnectErrs() {
					if connect.CodeOf(err) != connect.CodeUnauthenticated {
						t.Fatalf("a stream ended for another reason than its token: %v", err)
					}
				}
			}
			t.Logf("%d events over %d tokens in %v", len(rec.snapshot()), tk.calls.Load(), time.Since(began).Round(time.Millisecond))
		})
	}
}

// TestResyncOnEpochChange replaces the server by one with a new broker at
// the same address: its history is gone, so the welcome says
// EPOCH_CHANGED and OnResync runs before the new server's events.
func TestResyncOnEpochChange(t *testing.T) {
	checkGoroutines(t)
	srv := newTestServer(t)
	var st statuses
	rec := &recorder{}
	var reasons []client.ResyncReason
	start(t, client.Options{
		BaseURL:    srv.URL,
		HTTPClient: testkit.HTTPClient(t, false),
		Token:      srv.tokens("alice", time.Minute).Token,
		Backoff:    fast,
		OnStatus:   st.OnStatus,
		OnResync: func(ctx context.Context, reason client.ResyncReason) error {
			reasons = append(reasons, reason) // OnResync and the handler never run concurrently
			return rec.Handle(ctx, &realtimev1.Event{Id: "RESYNC"})
		},
	}, rec.Handle)
	st.waitState(t, client.StateConnected, 1)
	var want []string
	for i := range 3 {
		want = append(want, srv.publish(t, "home", fmt.Sprint("before ", i)))
	}
	poll.Eventually(t, 5*time.Second, 5*time.Millisecond, func() error {
		if n := len(rec.snapshot()); n < 3 {
			return fmt.Errorf("%d events", n)
		}
		return nil
	})
	oldEpoch := srv.Broker.Epoch()
	srv.Restart(true)
	st.waitState(t, client.StateResync, 1)
	if srv.Broker.Epoch() == oldEpoch {
		t.Fatal("restart kept the epoch")
	}
	want = append(want, "RESYNC", srv.publish(t, "home", "after"))
	exactlyOnce(t, srv, rec, want)
	if !slices.Equal(reasons, []client.ResyncReason{client.ResyncEpochChanged}) {
		t.Fatalf("resync reasons %v", reasons)
	}
	var connected []client.Status
	for _, s := range st.all() {
		if s.State == client.StateConnected {
			connected = append(connected, s)
		}
	}
	if len(connected) != 2 || connected[1].Resumed || !connected[1].Reconnected ||
		connected[1].Welcome.GetResume() != realtimev1.ResumeStatus_RESUME_STATUS_EPOCH_CHANGED {
		t.Fatalf("statuses: %s", describe(st.all()))
	}
}

// TestWatchdog freezes the connection (a proxy that stops forwarding
// without closing): heartbeats stop, the watchdog declares the stream dead
// after twice the heartbeat interval, and the client reconnects and resumes
// the events published meanwhile.
func TestWatchdog(t *testing.T) {
	checkGoroutines(t)
	const heartbeat = 200 * time.Millisecond
	srv := newTestServer(t, func(c *server.Config) { c.Heartbeat = heartbeat })
	px := newProxy(t, srv.Addr)
	var st statuses
	rec := &recorder{}
	start(t, client.Options{
		BaseURL:    px.URL(),
		HTTPClient: testkit.HTTPClient(t, false),
		Token:      srv.tokens("alice", time.Minute).Token,
		Backoff:    fast,
		OnStatus:   st.OnStatus,
	}, rec.Handle)
	st.waitState(t, client.StateConnected, 1)
	var want []string
	for i := range 3 {
		want = append(want, srv.publish(t, "home", fmt.Sprint("before ", i)))
	}
	// Stay idle for several heartbeat intervals: heartbeats keep the
	// watchdog quiet.
	time.Sleep(3 * heartbeat)
	if n := st.count(client.StateReconnecting); n != 0 {
		t.Fatalf("watchdog fired on a stream with heartbeats: %s", describe(st.all()))
	}
	px.freeze()
	frozeAt := time.Now()
	for i := range 5 {
		want = append(want, srv.publish(t, "home", fmt.Sprint("while frozen ", i)))
	}
	st.waitState(t, client.StateConnected, 2)
	t.Logf("reconnected %v after the freeze", time.Since(frozeAt).Round(time.Millisecond))
	errs := st.reconnectErrs()
	if len(errs) == 0 || !errors.Is(errs[0], client.ErrStalled) || connect.CodeOf(errs[0]) != connect.CodeUnavailable {
		t.Fatalf("want a stall: %s", describe(st.all()))
	}
	exactlyOnce(t, srv, rec, want)
}

// TestSlowConsumerResumes blocks the handler until the server cuts the
// stream off as a slow consumer (ResourceExhausted); the client then
// reconnects and recovers everything from history.
func TestSlowConsumerResumes(t *testing.T) {
	checkGoroutines(t)
	srv := newTestServer(t, func(c *server.Config) { c.QueueSize = 4 })
	var st statuses
	rec := &recorder{}
	release := make(chan struct{})
	start(t, client.Options{
		BaseURL:    srv.URL,
		HTTPClient: testkit.HTTPClient(t, false),
		Token:      srv.tokens("alice", time.Minute).Token,
		Backoff:    fast,
		OnStatus:   st.OnStatus,
	}, func(ctx context.Context, ev *realtimev1.Event) error {
		select {
		case <-release:
		case <-ctx.Done():
			return ctx.Err()
		}
		return rec.Handle(ctx, ev)
	})
	st.waitState(t, client.StateConnected, 1)
	// Random payloads: gzip would shrink a repeated one ~500 times, and the
	// socket buffers would then hide the back-pressure this test is about.
	// Publishing stops as soon as the broker has cut the subscription (it
	// leaves the rooms inside Publish), so a starved stream goroutine does
	// not make the test publish, and then replay, more.
	var want []string
	for len(want) < 2000 && srv.Broker.Stats().Subscriptions > 0 {
		want = append(want, srv.publish(t, "home", incompressible(t, 16<<10)))
	}
	if srv.Broker.Stats().Subscriptions > 0 {
		t.Fatalf("subscription still open after %d events of 16 KiB", len(want))
	}
	t.Logf("cut off after %d events of 16 KiB", len(want))
	close(release)
	st.waitState(t, client.StateConnected, 2)
	exactlyOnce(t, srv, rec, want)
	errs := st.reconnectErrs()
	if len(errs) == 0 || connect.CodeOf(errs[0]) != connect.CodeResourceExhausted {
		t.Fatalf("want ResourceExhausted: %s", describe(st.all()))
	}
}

// TestUnauthenticatedGivesUp: a credential that the server rejects, twice
// in a row with no welcome between, ends Subscribe with Unauthenticated —
// after one retry with a fresh token, not in a hot loop.
func TestUnauthenticatedGivesUp(t *testing.T) {
	checkGoroutines(t)
	srv := newTestServer(t)
	var st statuses
	calls := 0
	run := start(t, client.Options{
		BaseURL:    srv.URL,
		HTTPClient: testkit.HTTPClient(t, false),
		Token: func(context.Context) (string, error) {
			calls++
			return "eyJnot.a.token", nil
		},
		Backoff:  fast,
		OnStatus: st.OnStatus,
	}, (&recorder{}).Handle)
	err := run.wait(t, 5*time.Second)
	wantCode(t, err, connect.CodeUnauthenticated)
	if calls != 2 {
		t.Fatalf("Token called %d times, want 2", calls)
	}
	if n := st.count(client.StateReconnecting); n != 1 {
		t.Fatalf("%d reconnections, want 1: %s", n, describe(st.all()))
	}
	// The one retry comes at once: a token refused at open is most likely
	// stale, and the fresh one either works or stops the subscriber
	// (docs/RECONNECT.md, testdata/reconnect/cases.json).
	if r := st.all()[0]; r.State != client.StateReconnecting || r.Delay != 0 || r.Attempt != 1 {
		t.Fatalf("the retry after a refused token: %s", describe(st.all()))
	}
}

// TestInvalidCursor: a cursor the server rejects is dropped, the stream
// starts afresh at once and OnResync says why.
func TestInvalidCursor(t *testing.T) {
	checkGoroutines(t)
	srv := newTestServer(t)
	var st statuses
	rec := &recorder{}
	var reasons []client.ResyncReason
	start(t, client.Options{
		BaseURL:    srv.URL,
		HTTPClient: testkit.HTTPClient(t, false),
		Token:      srv.tokens("alice", time.Minute).Token,
		Cursor:     "not-a-cursor",
		OnStatus:   st.OnStatus,
		OnResync: func(_ context.Context, r client.ResyncReason) error {
			reasons = append(reasons, r)
			return nil
		},
	}, rec.Handle)
	st.waitState(t, client.StateResync, 1)
	exactlyOnce(t, srv, rec, nil)
	all := st.all()
	if all[0].State != client.StateReconnecting || connect.CodeOf(all[0].Err) != connect.CodeInvalidArgument || all[0].Delay != 0 || all[0].Cursor != "" {
		t.Fatalf("statuses: %s", describe(all))
	}
	if !slices.Equal(reasons, []client.ResyncReason{client.ResyncInvalidCursor}) {
		t.Fatalf("resync reasons %v", reasons)
	}
}

// TestCursorAcrossSubscribers: a second Subscribe given the cursor of the
// last event the first one handled gets exactly the events published in
// between.
func TestCursorAcrossSubscribers(t *testing.T) {
	checkGoroutines(t)
	srv := newTestServer(t)
	opts := client.Options{
		BaseURL:    srv.URL,
		HTTPClient: testkit.HTTPClient(t, false),
		Token:      srv.tokens("alice", time.Minute).Token,
	}
	var st1 statuses
	opts.OnStatus = st1.OnStatus
	first := &recorder{}
	run := start(t, opts, first.Handle)
	st1.waitState(t, client.StateConnected, 1)
	exactlyOnce(t, srv, first, []string{srv.publish(t, "home", "one")})
	run.stop(t)

	var missed []string
	for i := range 3 {
		missed = append(missed, srv.publish(t, "home", fmt.Sprint("missed ", i)))
	}
	var st2 statuses
	opts.OnStatus = st2.OnStatus
	opts.Cursor = first.lastCursor()
	second := &recorder{}
	start(t, opts, second.Handle)
	st2.waitState(t, client.StateConnected, 1)
	if s := st2.all()[0]; !s.Resumed || s.Reconnected {
		t.Fatalf("second subscriber: %s", describe(st2.all()))
	}
	exactlyOnce(t, srv, second, missed)
}

func TestHandlerErrorEndsSubscribe(t *testing.T) {
	checkGoroutines(t)
	srv := newTestServer(t)
	boom := errors.New("boom")
	var st statuses
	n := 0
	run := start(t, client.Options{
		BaseURL:    srv.URL,
		HTTPClient: testkit.HTTPClient(t, false),
		Token:      srv.tokens("alice", time.Minute).Token,
		OnStatus:   st.OnStatus,
	}, func(context.Context, *realtimev1.Event) error {
		n++
		if n == 2 {
			return boom
		}
		return nil
	})
	st.waitState(t, client.StateConnected, 1)
	srv.publish(t, "home", "one")
	srv.publish(t, "home", "two")
	if err := run.wait(t, 5*time.Second); err != boom {
		t.Fatalf("Subscribe returned %v, want the handler's error unchanged", err)
	}
}

// TestFatalErrors: mistakes that a retry cannot fix end Subscribe at once.
func TestFatalErrors(t *testing.T) {
	checkGoroutines(t)
	srv := newTestServer(t)
	tokens := srv.tokens("alice", time.Minute).Token
	hc := testkit.HTTPClient(t, false)
	for _, tc := range []struct {
		name string
		opts client.Options
		code connect.Code // 0: a configuration error before any call
	}{
		{"wrong path", client.Options{BaseURL: srv.URL + "/nope", HTTPClient: hc, Token: tokens}, connect.CodeUnimplemented},
		{"no base URL", client.Options{Token: tokens}, 0},
		{"not http", client.Options{BaseURL: "ftp://x", Token: tokens}, 0},
		{"no token", client.Options{BaseURL: srv.URL}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := client.Subscribe(ctx, tc.opts, (&recorder{}).Handle)
			if err == nil || errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Subscribe returned %v", err)
			}
			if tc.code != 0 {
				wantCode(t, err, tc.code)
			}
			t.Log(err)
		})
	}
	t.Run("token error", func(t *testing.T) {
		fail := errors.New("no session")
		err := client.Subscribe(context.Background(), client.Options{
			BaseURL: srv.URL, HTTPClient: hc,
			Token: func(context.Context) (string, error) { return "", fail },
		}, (&recorder{}).Handle)
		if !errors.Is(err, fail) {
			t.Fatalf("Subscribe returned %v, want the Token error", err)
		}
	})
}

// TestCancelWhileBackingOff: cancelling ends Subscribe promptly even while
// it waits to reconnect to a server that is down.
func TestCancelWhileBackingOff(t *testing.T) {
	checkGoroutines(t)
	srv := newTestServer(t)
	url := srv.URL
	srv.Stop()
	var st statuses
	run := start(t, client.Options{
		BaseURL:  url,
		Token:    srv.tokens("alice", time.Minute).Token,
		Backoff:  client.Backoff{Initial: time.Minute, Max: time.Minute},
		OnStatus: st.OnStatus,
	}, (&recorder{}).Handle)
	st.waitState(t, client.StateReconnecting, 1)
	wantCode(t, st.all()[0].Err, connect.CodeUnavailable)
	began := time.Now()
	run.stop(t)
	if d := time.Since(began); d > time.Second {
		t.Fatalf("Subscribe took %v to return after cancel", d)
	}
}

// TestFailedResyncKeepsOldCursor: when OnResync fails, Subscribe returns its
// error and the last status still carries the cursor from before the gap;
// a new Subscribe from that cursor is told to resync again rather than
// resuming past the events the app never saw.
func TestFailedResyncKeepsOldCursor(t *testing.T) {
	checkGoroutines(t)
	srv := newTestServer(t)
	var st statuses
	failed := errors.New("refetch failed")
	opts := client.Options{
		BaseURL:    srv.URL,
		HTTPClient: testkit.HTTPClient(t, false),
		Token:      srv.tokens("alice", time.Minute).Token,
		Backoff:    fast,
		OnStatus:   st.OnStatus,
		OnResync:   func(context.Context, client.ResyncReason) error { return failed },
	}
	var mu sync.Mutex
	before := "" // the cursor of the last event handled
	handle := func(_ context.Context, ev *realtimev1.Event) error {
		mu.Lock()
		before = ev.GetCursor()
		mu.Unlock()
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- client.Subscribe(ctx, opts, handle) }()
	st.waitState(t, client.StateConnected, 1)
	srv.publish(t, "home", "before")
	poll.Eventually(t, 5*time.Second, 5*time.Millisecond, func() error {
		mu.Lock()
		defer mu.Unlock()
		if before == "" {
			return errors.New("no event yet")
		}
		return nil
	})
	srv.Restart(true) // a new epoch: the next welcome asks for a resync
	select {
	case err := <-done:
		if !errors.Is(err, failed) {
			t.Fatalf("Subscribe returned %v, want the OnResync error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Subscribe did not return after OnResync failed")
	}
	all := st.all()
	if got := all[len(all)-1].Cursor; got != before {
		t.Fatalf("last status cursor %q, want the pre-gap cursor %q", got, before)
	}
	// Restarting from that cursor asks for the resync again.
	var reasons []client.ResyncReason
	opts.Cursor = before
	opts.OnResync = func(_ context.Context, r client.ResyncReason) error {
		reasons = append(reasons, r)
		cancel()
		return nil
	}
	if err := client.Subscribe(ctx, opts, handle); !errors.Is(err, context.Canceled) {
		t.Fatalf("second Subscribe: %v", err)
	}
	if len(reasons) != 1 || reasons[0] != client.ResyncEpochChanged {
		t.Fatalf("resync reasons %v, want one epoch change", reasons)
	}
}

// TestRenewalIntoAnotherHousehold renews the stream with a token for
// another household (an organization switch): the switch is not seamless.
// OnResync is told why, the Connected status names the new household, and
// the new household's events arrive, not the old one's.
func TestRenewalIntoAnotherHousehold(t *testing.T) {
	checkGoroutines(t)
	srv := newTestServer(t, func(c *server.Config) { c.TokenGrace = time.Second })
	var household atomic.Pointer[string]
	home, away := "home", "away"
	household.Store(&home)
	token := func(context.Context) (string, error) {
		tok, _, err := srv.Key.Mint(auth.MintOptions{UserID: "alice", HouseholdID: *household.Load(), TTL: 2 * time.Second})
		return tok, err
	}
	var st statuses
	rec := &recorder{}
	var mu sync.Mutex
	var reasons []client.ResyncReason
	start(t, client.Options{
		BaseURL:    srv.URL,
		HTTPClient: testkit.HTTPClient(t, false),
		Token:      token,
		Backoff:    fast,
		OnStatus:   st.OnStatus,
		OnResync: func(ctx context.Context, reason client.ResyncReason) error {
			mu.Lock()
			reasons = append(reasons, reason)
			mu.Unlock()
			return rec.Handle(ctx, &realtimev1.Event{Id: "RESYNC"})
		},
	}, rec.Handle)
	st.waitState(t, client.StateConnected, 1)
	want := []string{srv.publish(t, "home", "at home")}
	poll.Eventually(t, 5*time.Second, 5*time.Millisecond, func() error {
		if got := rec.snapshot(); !slices.Equal(got, want) {
			return fmt.Errorf("events %v", got)
		}
		return nil
	})
	household.Store(&away)
	st.waitState(t, client.StateResync, 1)
	mu.Lock()
	got := slices.Clone(reasons)
	mu.Unlock()
	if !slices.Equal(got, []client.ResyncReason{client.ResyncIdentityChanged}) {
		t.Fatalf("resync reasons %v", got)
	}
	var last client.Status
	for _, s := range st.all() {
		if s.State == client.StateConnected {
			last = s
		}
	}
	if h := last.Welcome.GetHouseholdId(); h != "away" {
		t.Fatalf("connected to household %q after the switch: %s", h, describe(st.all()))
	}
	srv.publish(t, "home", "left behind")
	want = append(want, "RESYNC", srv.publish(t, "away", "away"))
	poll.Eventually(t, 10*time.Second, 5*time.Millisecond, func() error {
		if got := rec.snapshot(); !slices.Equal(got, want) {
			return fmt.Errorf("events %v, want %v", got, want)
		}
		return nil
	})
}
