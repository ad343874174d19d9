package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/honeydo/realtime/client"
	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
	"github.com/honeydo/realtime/gen/honeydo/realtime/v1/realtimev1connect"
	systemv1 "github.com/honeydo/realtime/gen/honeydo/system/v1"
	"github.com/honeydo/realtime/internal/auth"
	"github.com/honeydo/realtime/internal/broker"
	"github.com/honeydo/realtime/internal/room"
	"github.com/honeydo/realtime/internal/testkit/poll"
)

// reader is a browser-like subscriber: the resilient Go client, which
// reconnects with its cursor, recording every event its handler gets.
type reader struct {
	name   string
	cancel context.CancelFunc
	done   chan error

	mu          sync.Mutex
	texts       []string
	connects    int // welcomes received
	resumed     int // welcomes after a reconnect that said RESUMED
	resyncs     int
	lastWelcome *realtimev1.Welcome
	changed     chan struct{}
}

// startReader subscribes user (of household) through baseURL until the test
// ends, and waits for the first welcome.
func startReader(t *testing.T, baseURL string, key *auth.DevKey, user, household string) *reader {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &reader{name: user, cancel: cancel, done: make(chan error, 1), changed: make(chan struct{}, 1)}
	opts := client.Options{
		BaseURL: baseURL,
		Token: func(context.Context) (string, error) {
			tok, _, err := key.Mint(auth.MintOptions{UserID: user, HouseholdID: household, TTL: 10 * time.Minute})
			return tok, err
		},
		Backoff:        client.Backoff{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond},
		ConnectTimeout: 3 * time.Second,
		OnStatus: func(st client.Status) {
			if st.State != client.StateConnected {
				return
			}
			r.mu.Lock()
			r.connects++
			if st.Reconnected && st.Resumed {
				r.resumed++
			}
			r.lastWelcome = st.Welcome
			r.mu.Unlock()
			r.signal()
		},
		OnResync: func(context.Context, client.ResyncReason) error {
			r.mu.Lock()
			r.resyncs++
			r.mu.Unlock()
			return nil
		},
	}
	go func() {
		r.done <- client.Subscribe(ctx, opts, func(_ context.Context, ev *realtimev1.Event) error {
			r.mu.Lock()
			r.texts = append(r.texts, ev.GetNotification().GetMessage())
			r.mu.Unlock()
			r.signal()
			return nil
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-r.done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("reader %s: %v", user, err)
		}
	})
	r.waitUntil(t, 10*time.Second, func() bool { return r.connects > 0 }, "first welcome")
	return r
}

func (r *reader) signal() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// waitUntil waits for cond, evaluated under the reader's lock.
func (r *reader) waitUntil(t *testing.T, timeout time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		r.mu.Lock()
		ok := cond()
		n := len(r.texts)
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-r.changed:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("reader %s: no %s within %v (%d events so far)", r.name, what, timeout, n)
		}
	}
}

// waitEvents waits until the reader has at least n events.
func (r *reader) waitEvents(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	r.waitUntil(t, timeout, func() bool { return len(r.texts) >= n }, fmt.Sprint(n, " events"))
}

func (r *reader) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.texts...)
}

// checkSequence fails unless texts are exactly prefix0..prefix(n-1) once
// each, in order.
func checkSequence(t *testing.T, who string, texts []string, prefix string, n int) {
	t.Helper()
	if len(texts) != n {
		t.Errorf("%s got %d events, want %d", who, len(texts), n)
	}
	for i, s := range texts {
		if want := prefix + strconv.Itoa(i); s != want {
			t.Errorf("%s: event %d is %q, want %q (lost, duplicated or reordered)", who, i, s, want)
			return
		}
	}
}

func notification(text string) *realtimev1.Event {
	return &realtimev1.Event{Payload: &realtimev1.Event_Notification{Notification: &systemv1.Notification{Message: text}}}
}

// publisher publishes prefix0..prefix(n-1) to a household through b, one
// every interval, retrying each event until it is acknowledged. Every event
// has its own id, so a retry after an ambiguous failure is not stored
// twice.
type publisher struct {
	done     chan struct{}
	mu       sync.Mutex
	acked    int
	failures int
}

func startPublisher(ctx context.Context, b broker.Broker, household, prefix string, n int, interval time.Duration) *publisher {
	p := &publisher{done: make(chan struct{})}
	go func() {
		defer close(p.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for i := range n {
			for {
				ev := notification(prefix + strconv.Itoa(i))
				ev.Id = prefix + "id" + strconv.Itoa(i)
				_, err := b.Publish(ctx, broker.Target{Room: room.Household(household)}, ev)
				if err == nil {
					break
				}
				if ctx.Err() != nil {
					return
				}
				p.mu.Lock()
				p.failures++
				p.mu.Unlock()
				time.Sleep(20 * time.Millisecond)
			}
			p.mu.Lock()
			p.acked++
			p.mu.Unlock()
			select {
			case <-tick.C:
			case <-ctx.Done():
				return
			}
		}
	}()
	return p
}

func (p *publisher) progress() (acked, failures int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.acked, p.failures
}

// waitAcked waits until the publisher has n acknowledged events.
func (p *publisher) waitAcked(t *testing.T, n int, timeout time.Duration) {
	t.Helper()
	poll.Eventually(t, timeout, 10*time.Millisecond, func() error {
		if a, _ := p.progress(); a < n {
			return fmt.Errorf("%d of %d events acknowledged", a, n)
		}
		return nil
	})
}

// serviceClient calls node with the dev service key, as a backend service.
func serviceClient(baseURL string, key *auth.DevKey) realtimev1connect.RealtimeServiceClient {
	return realtimev1connect.NewRealtimeServiceClient(http.DefaultClient, baseURL, connect.WithInterceptors(client.TokenInterceptor(func(context.Context) (string, error) {
		return key.ServiceKey(), nil
	})))
}

func householdTarget(h string) broker.Target { return broker.Target{Room: room.Household(h)} }
