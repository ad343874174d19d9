package server

import (
	"testing"
	"time"
)

// ringWait is how long a test waits for an alarm that is due: generous,
// for a busy machine. Rings are checked against the clock, not this.
const ringWait = 30 * time.Second

func waitRing(t *testing.T, a *alarm) {
	t.Helper()
	select {
	case <-a.C:
	case <-time.After(ringWait):
		t.Fatalf("alarm armed for %d did not ring", a.at)
	}
}

func TestAlarmClockRingsEachAlarmAtItsTime(t *testing.T) {
	c := newAlarmClock()
	alarms := []*alarm{newAlarm(), newAlarm(), newAlarm()}
	// Armed out of order, and the first one moved later after arming, so
	// that the shared timer has to be moved both ways.
	now := c.now()
	c.arm(alarms[0], now+int64(time.Millisecond))
	c.arm(alarms[2], now+int64(30*time.Millisecond))
	c.arm(alarms[1], now+int64(20*time.Millisecond))
	c.arm(alarms[0], now+int64(10*time.Millisecond))
	for _, a := range alarms {
		waitRing(t, a)
		if got := c.now(); got < a.at {
			t.Errorf("alarm for %d rang at %d, early", a.at, got)
		}
	}
	if len(c.queue) != 0 {
		t.Errorf("%d alarms still queued", len(c.queue))
	}
}

func TestAlarmClockStoppedAlarmDoesNotRing(t *testing.T) {
	c := newAlarmClock()
	stopped, later := newAlarm(), newAlarm()
	now := c.now()
	c.arm(stopped, now+int64(5*time.Millisecond))
	c.arm(later, now+int64(50*time.Millisecond))
	c.stop(stopped)
	c.stop(stopped) // idempotent
	waitRing(t, later)
	select {
	case <-stopped.C:
		t.Fatal("a stopped alarm rang")
	default:
	}
}
