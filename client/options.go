package client

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"connectrpc.com/connect"

	"github.com/honeydo/realtime/client/internal/reconnect"
	realtimev1 "github.com/honeydo/realtime/gen/honeydo/realtime/v1"
)

// Handler receives the events of a subscription, one at a time, in order.
// Returning nil accepts the event: its cursor becomes the resume position.
// Returning an error ends [Subscribe] with that error; the event is not
// accepted, so a later Subscribe from the last accepted cursor gets it
// again. ctx is the context passed to Subscribe.
type Handler func(ctx context.Context, ev *realtimev1.Event) error

// Options configures [Subscribe] and [NewRealtimeClient]. Only BaseURL and
// Token are required; every zero value means the documented default.
type Options struct {
	// BaseURL is the server's base URL, e.g. "http://127.0.0.1:8080" or
	// "https://realtime.honeydo.example". Required.
	BaseURL string
	// HTTPClient makes the requests. Nil means a client of this package's
	// own: HTTP/1.1 (or HTTP/2 negotiated over TLS) for the Connect and
	// gRPC-Web protocols, and cleartext HTTP/2 (h2c) for gRPC on an http://
	// URL, since gRPC needs HTTP/2. [Subscribe] closes the idle connections
	// of its own client when it returns.
	HTTPClient connect.HTTPClient
	// Protocol is the wire protocol. The zero value is [ProtocolConnect].
	Protocol Protocol
	// ClientOptions are added to the generated client's options, after the
	// protocol's, e.g. connect.WithProtoJSON().
	ClientOptions []connect.ClientOption

	// Token returns the bearer credential: a Clerk session token (or a dev
	// token) for people, a service key for services. [Subscribe] calls it
	// afresh before every connection attempt, so it should return a token
	// that is valid now (Clerk's getToken does). An error from Token ends
	// Subscribe with that error: retry inside Token if its source is
	// flaky. Required.
	Token func(ctx context.Context) (string, error)

	// Origin identifies this client's own calls (see [NewOrigin]): when set,
	// [NewRealtimeClient] sends it with every call, and [Subscribe] skips
	// the events those calls caused (Event.origin equal to Origin, sent by
	// the stream's own user) but still moves its cursor past them, since
	// the caller already has its calls' answers. Send it on the clients of
	// modules' services too, with [WithOrigin]. Empty means every event
	// reaches the handler.
	Origin string

	// Cursor is where the first stream resumes: the cursor of the last event
	// handled by an earlier subscriber. Empty means live events only.
	Cursor string
	// Backoff spaces out reconnection attempts. See [Backoff] for defaults.
	Backoff Backoff
	// ConnectTimeout bounds how long an attempt may take to receive the
	// stream's first frame, the Welcome. Zero means 10s.
	ConnectTimeout time.Duration
	// Watchdog is how long an open stream may stay silent (no events, no
	// heartbeat) before it is declared dead and reopened. Zero means twice
	// the heartbeat interval the server announces in its Welcome (or 8s
	// if it announces none): with the server's default 4s heartbeat, a
	// frozen server or a dead network path is noticed within 8s. The watchdog only runs while the subscriber
	// waits for a frame, never while the handler works.
	Watchdog time.Duration

	// RenewLead is how long before the server would end a stream (at its
	// token's expiry plus grace, [realtimev1.Welcome.ExpireTime]) the next
	// stream is opened with a fresh token, so that the subscription
	// outlives every token without a gap, a duplicate or a Reconnecting
	// status; at most half the stream's life. Zero means 10s; negative
	// turns renewing off (the stream then ends with its token and is
	// reopened at once).
	RenewLead time.Duration
	// CallTimeout bounds each unary call of [NewRealtimeClient]'s client
	// whose context has no deadline; one that runs out fails with
	// DeadlineExceeded. Zero means 10s; negative means no bound.
	CallTimeout time.Duration

	// OnStatus, if set, is told about connections, reconnections and
	// resyncs. It is informational and should return quickly; the stream
	// waits while it runs.
	OnStatus func(Status)
	// OnResync, if set, is called when events may have been missed (see
	// [ResyncReason]) after the new stream's Welcome and before any of its
	// events reach the handler: refetch the application's state here. An
	// error ends [Subscribe] with that error, and the cursor (in every
	// Status) stays where it was before the gap, so a Subscribe restarted
	// from it is told to resync again.
	OnResync func(ctx context.Context, reason ResyncReason) error
}

// Protocol is the wire protocol a client speaks; the server speaks all
// three on one port.
type Protocol int

const (
	// ProtocolConnect is the Connect protocol, the default: works over
	// HTTP/1.1 and HTTP/2 and is what browsers use.
	ProtocolConnect Protocol = iota
	// ProtocolGRPC is gRPC; it needs HTTP/2 (h2c on an http:// URL).
	ProtocolGRPC
	// ProtocolGRPCWeb is gRPC-Web.
	ProtocolGRPCWeb
)

// String returns the protocol's name as [ParseProtocol] accepts it.
func (p Protocol) String() string {
	switch p {
	case ProtocolConnect:
		return "connect"
	case ProtocolGRPC:
		return "grpc"
	case ProtocolGRPCWeb:
		return "grpcweb"
	}
	return fmt.Sprintf("Protocol(%d)", int(p))
}

// ParseProtocol parses "connect", "grpc" or "grpcweb" (also "grpc-web"),
// case-insensitively.
func ParseProtocol(s string) (Protocol, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "connect", "":
		return ProtocolConnect, nil
	case "grpc":
		return ProtocolGRPC, nil
	case "grpcweb", "grpc-web":
		return ProtocolGRPCWeb, nil
	}
	return 0, fmt.Errorf("unknown protocol %q: want connect, grpc or grpcweb", s)
}

func (p Protocol) clientOption() connect.ClientOption {
	switch p {
	case ProtocolGRPC:
		return connect.WithGRPC()
	case ProtocolGRPCWeb:
		return connect.WithGRPCWeb()
	}
	return nil
}

// Backoff is the delay between reconnection attempts: exponential with
// full jitter. Attempt n (counting from 1) waits a uniformly random time
// between 0 and min(Max, Initial·2ⁿ⁻¹), so that clients cut off together
// (a server restart) do not come back together.
type Backoff struct {
	// Initial is the upper bound of the first delay. Zero means 1s. It is
	// also how long a stream must have been open for the attempt count to
	// start again from 1 when it ends.
	Initial time.Duration
	// Max caps the upper bound. Zero means 5s.
	Max time.Duration
}

// policy is the reconnect policy with b's settings.
func (b Backoff) policy() reconnect.Policy {
	return reconnect.Policy{BackoffInitial: b.Initial, BackoffMax: b.Max}.WithDefaults()
}

// Delay returns the delay before attempt n (n ≥ 1) with zero fields
// replaced by their defaults.
func (b Backoff) Delay(n int) time.Duration {
	return rand.N(b.policy().BackoffCeiling(max(n, 1)) + 1)
}

// State is what a [Status] reports.
type State int

const (
	// StateConnected: a stream is open; its Welcome is in [Status.Welcome].
	StateConnected State = iota + 1
	// StateReconnecting: the stream ended or an attempt failed
	// ([Status.Err]); the next attempt, number [Status.Attempt], starts
	// after [Status.Delay].
	StateReconnecting
	// StateResync: events may have been missed ([Status.Reason]);
	// [Options.OnResync] is called next.
	StateResync
)

// String returns the state's name.
func (s State) String() string {
	switch s {
	case StateConnected:
		return "connected"
	case StateReconnecting:
		return "reconnecting"
	case StateResync:
		return "resync"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Status describes a change in a subscriber's connection, for
// [Options.OnStatus]. Fields that do not apply to State are zero.
type Status struct {
	// State is what happened.
	State State
	// Welcome is the stream's first frame (Connected, Resync): who the
	// server thinks the caller is, the rooms joined, whether the resume
	// succeeded, the stream's start cursor.
	Welcome *realtimev1.Welcome
	// Resumed (Connected) is true when the stream resumed from the
	// subscriber's cursor with nothing missed.
	Resumed bool
	// Reconnected (Connected) is true for every stream but the first.
	Reconnected bool
	// Attempt (Reconnecting) counts the attempts since the last stream that
	// stayed open for at least [Backoff.Initial]; 1 for the first retry.
	Attempt int
	// Delay (Reconnecting) is how long the subscriber waits before the
	// attempt.
	Delay time.Duration
	// Err (Reconnecting) is why the stream ended or the attempt failed; a
	// [*connect.Error] in most cases ([connect.CodeOf] gives its code).
	Err error
	// Reason (Resync) is why events may have been missed.
	Reason ResyncReason
	// Cursor is the subscriber's resume cursor at the time of the status:
	// where the next stream would resume.
	Cursor string
}

// ResyncReason says why events may have been missed.
type ResyncReason int

const (
	// ResyncExpired: the cursor was older than the server's history window
	// (RESUME_STATUS_EXPIRED).
	ResyncExpired ResyncReason = iota + 1
	// ResyncEpochChanged: the server's history was lost since the cursor
	// was issued, e.g. an in-memory server restarted
	// (RESUME_STATUS_EPOCH_CHANGED).
	ResyncEpochChanged
	// ResyncInvalidCursor: the server rejected the cursor as invalid
	// (InvalidArgument); the subscriber dropped it and started afresh.
	ResyncInvalidCursor
	// ResyncIdentityChanged: the new stream's user, household or rooms
	// differ from the previous stream's (the token now names another
	// user or household, e.g. after an organization switch): the events
	// are another set's, and the app's state is of the old one.
	ResyncIdentityChanged
)

// String returns a short explanation of the reason.
func (r ResyncReason) String() string {
	switch r {
	case ResyncExpired:
		return "cursor expired: older than the server's history window"
	case ResyncEpochChanged:
		return "epoch changed: the server's history was lost (e.g. it restarted)"
	case ResyncInvalidCursor:
		return "invalid cursor: the server rejected it"
	case ResyncIdentityChanged:
		return "identity changed: the stream now serves another user, household or rooms"
	}
	return fmt.Sprintf("ResyncReason(%d)", int(r))
}
