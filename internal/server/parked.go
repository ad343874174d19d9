package server

import (
	"context"
	"errors"
	"log/slog"
	"runtime/debug"
	"time"

	"connectrpc.com/connect"
)

// A direct stream parks without a goroutine. Most streams are idle almost
// all the time (a household's events come a few a minute), and a parked
// goroutine costs its stack, its g and, waiting in a select of five cases,
// five sudogs: over half of what an idle direct stream held. So a direct
// stream runs only when something wakes it, on a goroutine started for the
// purpose (or handed to one waiting, runners.go) that lets go of it once
// nothing is left to do:
//
//   - the broker, through [broker.Subscription.Notify], when events are
//     queued or the subscription ends;
//   - its heartbeat and token-expiry timers, which run a function instead
//     of sending on a channel;
//   - the connection's watch, when the client leaves;
//   - Shutdown, through [directStreams.shut].
//
// [liveStream.wakes] counts the wake-ups not yet handled; the one that
// takes it from zero starts the goroutine, which runs [liveStream.step]
// until no wake-up arrived during the last one. So at most one goroutine
// runs a stream, and no wake-up is lost between its last look and its
// exit. Once the stream is over the count is never zeroed again: later
// wake-ups (a timer already firing) start nothing.

// Reasons a direct stream was woken besides its subscription, set in
// [liveStream.flags] before the wake-up.
const (
	wokeHeartbeat uint32 = 1 << iota // the heartbeat interval passed without a frame
	wokeExpired                      // the token's grace ran out
	wokeGone                         // the client left (directWriter.gone is set)
)

// wakeFor records why and makes sure a goroutine runs the stream.
func (ls *liveStream) wakeFor(why uint32) {
	if why != 0 {
		ls.flags.Or(why)
	}
	if ls.wakes.Add(1) == 1 {
		ls.s.runners.start(ls)
	}
}

// notified is the stream's [broker.Subscription.Notify] function: it wakes
// the stream for what was queued and asks the publisher to yield to it when
// it started the stream on a lone event, so that the event is written
// before the publisher goes on. In a burst ([liveStream.inBurst]) the
// publisher does not yield: the stream's batch grows while it publishes.
func (ls *liveStream) notified() (yield bool) {
	if ls.wakes.Add(1) != 1 {
		return false
	}
	// No goroutine runs the stream until the one started here: its burst
	// state is the last one's, which ended with the count at zero.
	lone := !ls.inBurst()
	ls.s.runners.start(ls)
	return lone
}

// park lets the stream, set up as a direct stream by Subscribe (which holds
// the first wake-up), run from now on whenever it is woken.
func (ls *liveStream) park(d *directWriter, ended func(error)) {
	ls.ended = ended
	ls.heartbeat = time.AfterFunc(ls.s.cfg.Heartbeat, func() { ls.wakeFor(wokeHeartbeat) })
	if !ls.expire.IsZero() {
		ls.expiry = time.AfterFunc(time.Until(ls.expire), func() { ls.wakeFor(wokeExpired) })
	}
	d.watch(ls.s.watcher, func() { ls.wakeFor(wokeGone) })
	ls.sub.Notify(ls.notified)
	ls.s.runners.start(ls)
}

// run serves the stream until it has nothing left to do or is over. A panic
// ends the stream with Internal and is logged, as net/http recovers one in
// a handler: it must not take down the server.
func (ls *liveStream) run() {
	for {
		seen := ls.wakes.Load()
		if done, err := ls.stepSafely(); done {
			ls.closeDirect(err)
			return
		}
		if ls.wakes.CompareAndSwap(seen, 0) {
			return
		}
	}
}

func (ls *liveStream) stepSafely() (done bool, err error) {
	defer func() {
		if p := recover(); p != nil {
			ls.s.cfg.Logger.LogAttrs(context.Background(), slog.LevelError, "stream panicked", slog.Any("panic", p), slog.String("stack", string(debug.Stack())))
			ls.reason = "panic"
			done, err = true, connect.NewError(connect.CodeInternal, errors.New("internal error"))
		}
	}()
	return ls.step()
}

// step does what the stream was woken for: what [liveStream.pump] does for
// one wake-up of a stream that keeps its goroutine.
func (ls *liveStream) step() (done bool, err error) {
	d := ls.out.(*directWriter)
	select {
	case <-ls.s.closing:
		return true, ls.endShutdown()
	default:
	}
	flags := ls.flags.Load()
	if flags&wokeGone != 0 {
		switch d.seen() {
		case clientPipelined:
			ls.reason = "pipelined"
			return true, connect.NewError(connect.CodeFailedPrecondition, errPipelined)
		case clientLeft:
			return true, clientGone()
		}
		ls.flags.And(^wokeGone)
		d.rewatch(ls.s.watcher, func() { ls.wakeFor(wokeGone) })
	}
	if flags&wokeExpired != 0 {
		return true, ls.endExpired()
	}
	if n, _ := ls.sub.Head(); n > 0 || isClosed(ls.sub.Done()) {
		if done, err := ls.wake(); done {
			return true, err
		}
	}
	if ls.flags.Load()&wokeHeartbeat != 0 { // a frame since the snapshot made it moot
		ls.flags.And(^wokeHeartbeat)
		if err := ls.sendHeartbeat(); err != nil {
			return true, err
		}
	}
	return false, nil
}

// closeDirect ends the stream with err and reports it.
func (ls *liveStream) closeDirect(err error) {
	defer ls.s.direct.done(ls)
	ls.close(err)
	if ls.ended != nil {
		ls.ended(err)
	}
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
