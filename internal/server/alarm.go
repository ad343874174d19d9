package server

import (
	"container/heap"
	"sync"
	"time"
)

// alarmClock wakes streams at their deadlines (next heartbeat, token
// expiry) with one runtime timer for all of them, instead of two timers per
// stream that each frame had to reset. A stream keeps one [alarm]: it arms
// it for its earliest deadline, and when the alarm rings it compares the
// clock with its deadlines itself. A frame only records the time it was
// sent; the heartbeat alarm is not moved, and when it rings early (because
// frames went out since it was armed) the stream arms it again for the
// heartbeat that is due now. An idle stream is woken once per heartbeat, a
// busy one once per heartbeat interval to re-arm.
//
// Times are nanoseconds on the clock's monotonic scale ([alarmClock.now]).
// It is safe for concurrent use; its timer's callback runs on a goroutine
// of the runtime's and holds no lock while streams react.
type alarmClock struct {
	epoch time.Time

	mu    sync.Mutex
	queue alarmQueue
	timer *time.Timer // rings fire; armed for queue[0] while it is not empty
	next  int64       // when timer rings; 0 when stopped
}

// alarm is one stream's wake-up. C receives when it rings; it holds one
// signal, so a ring that the stream has not yet taken is not repeated.
type alarm struct {
	C     chan struct{}
	at    int64
	index int // in the clock's queue; -1 when not armed
}

func newAlarmClock() *alarmClock {
	c := &alarmClock{epoch: time.Now()}
	c.timer = time.AfterFunc(time.Hour, c.fire)
	c.timer.Stop()
	return c
}

func newAlarm() *alarm {
	return &alarm{C: make(chan struct{}, 1), index: -1}
}

// now is the clock's time: nanoseconds since it was made, monotonic.
func (c *alarmClock) now() int64 { return int64(time.Since(c.epoch)) }

// at converts a wall-clock instant to the clock's scale.
func (c *alarmClock) at(t time.Time) int64 { return int64(t.Sub(c.epoch)) }

// arm makes a ring at (or moves it there if it is armed).
func (c *alarmClock) arm(a *alarm, at int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a.at = at
	if a.index >= 0 {
		heap.Fix(&c.queue, a.index)
	} else {
		heap.Push(&c.queue, a)
	}
	c.rearm()
}

// stop disarms a; a signal already in a.C stays there.
func (c *alarmClock) stop(a *alarm) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if a.index >= 0 {
		heap.Remove(&c.queue, a.index)
		c.rearm()
	}
}

// rearm points the timer at the earliest alarm. Called with mu held.
func (c *alarmClock) rearm() {
	if len(c.queue) == 0 {
		if c.next != 0 {
			c.timer.Stop()
			c.next = 0
		}
		return
	}
	at := c.queue[0].at
	if c.next != 0 && c.next <= at {
		return // rings no later than needed; fire re-arms for the rest
	}
	c.next = max(at, 1)
	c.timer.Reset(time.Duration(at - c.now()))
}

// fire rings every alarm that is due and re-arms the timer for the next.
func (c *alarmClock) fire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	for len(c.queue) > 0 && c.queue[0].at <= now {
		a := heap.Pop(&c.queue).(*alarm)
		select {
		case a.C <- struct{}{}:
		default:
		}
	}
	c.next = 0
	c.rearm()
}

// alarmQueue is a min-heap of alarms by time ([container/heap]).
type alarmQueue []*alarm

func (q alarmQueue) Len() int           { return len(q) }
func (q alarmQueue) Less(i, j int) bool { return q[i].at < q[j].at }
func (q alarmQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}

func (q *alarmQueue) Push(x any) {
	a := x.(*alarm)
	a.index = len(*q)
	*q = append(*q, a)
}

func (q *alarmQueue) Pop() any {
	old := *q
	a := old[len(old)-1]
	old[len(old)-1] = nil
	a.index = -1
	*q = old[:len(old)-1]
	return a
}
