package client_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/honeydo/realtime/client"
	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	"github.com/honeydo/realtime/internal/testkit"
)

// noticeBound is the promise: a frozen server or a dead network path is
// noticed within 10 s.
const noticeBound = 10 * time.Second

// TestFrozenServerNoticedWithin10s runs the server and the client with
// their default timings and freezes every connection between them (the
// proxy stops forwarding without closing, as a SIGSTOPped server or a dead
// path does). The client must report the stream dead within 10 s.
func TestFrozenServerNoticedWithin10s(t *testing.T) {
	checkGoroutines(t)
	srv := newTestServer(t)
	px := newProxy(t, srv.Addr)
	var (
		mu        sync.Mutex
		stalledAt time.Time
	)
	var st statuses
	start(t, client.Options{
		BaseURL:    px.URL(),
		HTTPClient: testkit.HTTPClient(t, false),
		Token:      srv.tokens("alice", time.Hour).Token,
		Backoff:    fast,
		OnStatus: func(s client.Status) {
			st.OnStatus(s)
			if s.State == client.StateReconnecting && errors.Is(s.Err, client.ErrStalled) {
				mu.Lock()
				if stalledAt.IsZero() {
					stalledAt = time.Now()
				}
				mu.Unlock()
			}
		},
	}, (&recorder{}).Handle)
	st.waitState(t, client.StateConnected, 1)
	welcome := st.all()[0].Welcome
	t.Logf("server heartbeat %v", welcome.GetHeartbeatInterval().AsDuration())
	px.freezeAll()
	frozeAt := time.Now()
	deadline := time.Now().Add(3 * noticeBound) // generous: fail, not hang
	for {
		mu.Lock()
		at := stalledAt
		mu.Unlock()
		if !at.IsZero() {
			took := at.Sub(frozeAt)
			t.Logf("frozen stream noticed after %v", took.Round(time.Millisecond))
			if took > noticeBound {
				t.Fatalf("noticed %v after the freeze, want ≤ %v", took, noticeBound)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not noticed %v after the freeze: %s", time.Since(frozeAt), describe(st.all()))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestUnaryCallTimeout calls Ping through a frozen path with no deadline
// of its own: the client's default call timeout ends it with
// DeadlineExceeded and a message that says what happened.
func TestUnaryCallTimeout(t *testing.T) {
	checkGoroutines(t)
	srv := newTestServer(t)
	tk := srv.tokens("alice", time.Hour)
	for _, tc := range []struct {
		name    string
		timeout time.Duration // Options.CallTimeout
		want    time.Duration // the bound the call must end within
	}{
		{"default", 0, 10*time.Second + 5*time.Second},
		{"configured", 500 * time.Millisecond, 5 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			px := newProxy(t, srv.Addr)
			rt, err := client.NewRealtimeClient(client.Options{
				BaseURL:     px.URL(),
				HTTPClient:  testkit.HTTPClient(t, false),
				Token:       tk.Token,
				CallTimeout: tc.timeout,
			})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := rt.Ping(context.Background(), connect.NewRequest(&realtimev1.PingRequest{})); err != nil {
				t.Fatalf("ping before the freeze: %v", err)
			}
			px.freezeAll()
			// The guard only keeps a broken client from hanging the test.
			guard, cancel := context.WithTimeout(context.Background(), 3*noticeBound)
			defer cancel()
			began := time.Now()
			_, err = rt.Ping(&noDeadline{guard}, connect.NewRequest(&realtimev1.PingRequest{}))
			took := time.Since(began)
			t.Logf("ping through a frozen path failed after %v: %v", took.Round(time.Millisecond), err)
			wantCode(t, err, connect.CodeDeadlineExceeded)
			if guard.Err() != nil || took > tc.want {
				t.Fatalf("ping took %v, want ≤ %v", took, tc.want)
			}
			if !strings.Contains(err.Error(), "no answer from the server within") {
				t.Fatalf("unclear message: %v", err)
			}
		})
	}
}

// noDeadline hides its parent's deadline, so that the call timeout applies
// while the parent still ends a call that would otherwise hang the test.
type noDeadline struct{ context.Context }

func (noDeadline) Deadline() (time.Time, bool) { return time.Time{}, false }
