package server

import "time"

// runners are the goroutines that run woken direct streams (parked.go). A
// goroutine started for each wake-up paid for its start and, on every
// frame, for growing its stack through the write path: over a quarter of
// the server's CPU when 1,000 streams each wrote one event 50 times a
// second. So a runner that has finished a stream waits a while for the
// next one, with its stack grown, and a wake-up hands its stream to a
// waiting runner when there is one. Runners that wait longer than
// runnerIdle end: idle streams hold none.
type runners struct {
	waiting chan *liveStream // unbuffered: a send succeeds only if a runner waits
	closing <-chan struct{}  // the server's: waiting runners end at once
}

// runnerIdle is how long a runner waits for another stream: longer than
// the gaps of a busy server (one event to a room of many every few
// milliseconds) and far shorter than a heartbeat interval.
const runnerIdle = time.Second

func newRunners(closing <-chan struct{}) *runners {
	return &runners{waiting: make(chan *liveStream), closing: closing}
}

// start runs ls on a waiting runner, or on a new one.
func (r *runners) start(ls *liveStream) {
	select {
	case r.waiting <- ls:
	default:
		go r.loop(ls)
	}
}

// loop runs ls, then whatever stream it is handed next, until it has
// waited runnerIdle for one or the server shuts down.
func (r *runners) loop(ls *liveStream) {
	idle := time.NewTimer(runnerIdle)
	defer idle.Stop()
	for {
		ls.run()
		idle.Reset(runnerIdle)
		select {
		case ls = <-r.waiting:
		case <-idle.C:
			return
		case <-r.closing:
			return
		}
	}
}
