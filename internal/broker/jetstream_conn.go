package broker

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// The JetStream broker's NATS connection: the options it dials with, and
// connCtx, which follows the connection's status so that requests in flight
// fail as soon as it drops.

var errConnLost = errors.New("connection to NATS lost")

func (j *JetStream) defaultOptions() []nats.Option {
	return []nats.Option{
		nats.Name("realtimed"),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.ReconnectJitter(100*time.Millisecond, time.Second),
		// No buffering while disconnected: Publish must fail at once with
		// Unavailable rather than hang until its timeout.
		nats.ReconnectBufSize(-1),
		nats.PingInterval(10 * time.Second),
		nats.MaxPingsOutstanding(2),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			// The client reports its own Close as a disconnect too; only
			// an outage is worth a warning.
			if nc.IsClosed() {
				return
			}
			j.log.Warn("disconnected from NATS; reconnecting", "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			j.log.Info("reconnected to NATS", "server", nc.ConnectedUrlRedacted())
			j.poke()
		}),
	}
}

// watchConn follows the connection's status to keep connCtx current.
func (j *JetStream) watchConn(ch chan nats.Status) {
	defer j.nc.RemoveStatusListener(ch)
	for {
		select {
		case <-j.ctx.Done():
			return
		case _, ok := <-ch:
			if !ok {
				return
			}
			j.refreshConn()
		}
	}
}

func (j *JetStream) refreshConn() {
	connected := j.nc.IsConnected()
	j.mu.Lock()
	defer j.mu.Unlock()
	j.ready.notify()
	switch {
	case !connected:
		j.connCancel(errConnLost)
	case j.connCtx.Err() != nil && j.ctx.Err() == nil:
		j.connCtx, j.connCancel = context.WithCancelCause(j.ctx)
	}
}

// opCtx bounds one NATS request: by ctx, by timeout, and by the connection
// staying up. Its cause is errConnLost when the connection dropped.
func (j *JetStream) opCtx(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	j.mu.Lock()
	conn := j.connCtx
	j.mu.Unlock()
	if conn.Err() != nil && j.nc.IsConnected() {
		j.refreshConn() // reconnected before the status event arrived
		j.mu.Lock()
		conn = j.connCtx
		j.mu.Unlock()
	}
	ctx, cancelCause := context.WithCancelCause(ctx)
	ctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	stop := context.AfterFunc(conn, func() { cancelCause(context.Cause(conn)) })
	return ctx, func() {
		stop()
		cancelTimeout()
		cancelCause(nil)
	}
}

func (j *JetStream) closeConn() {
	if j.ownsConn {
		j.nc.Close()
	}
}

// redactURL drops credentials from NATS URLs before they are logged.
func redactURL(urls string) string {
	parts := strings.Split(urls, ",")
	for i, u := range parts {
		if at := strings.LastIndex(u, "@"); at >= 0 {
			if scheme := strings.Index(u, "://"); scheme >= 0 && scheme < at {
				parts[i] = u[:scheme+3] + "***" + u[at:]
			} else {
				parts[i] = "***" + u[at:]
			}
		}
	}
	return strings.Join(parts, ",")
}
