package server

import (
	"testing"
	"time"
)

// BenchmarkStreamTimers compares what a stream spends on its deadlines.
// per-stream-timers is how streams kept them until the alarm clock: a
// heartbeat timer and an expiry timer made per stream and the heartbeat
// timer reset after every frame. alarm-clock is one [alarm] per stream on
// the shared [alarmClock], and a frame only records its time. open is the
// setup and teardown of one stream (B/op is its memory); frame is the
// bookkeeping of one frame (alarm-clock's includes a clock read, which
// [liveStream.send] shares with the write deadline).
func BenchmarkStreamTimers(b *testing.B) {
	const hb = 4 * time.Second
	b.Run("per-stream-timers/open", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			heartbeat, expiry := time.NewTimer(hb), time.NewTimer(time.Hour)
			heartbeat.Stop()
			expiry.Stop()
		}
	})
	b.Run("alarm-clock/open", func(b *testing.B) {
		c := newAlarmClock()
		b.ReportAllocs()
		for b.Loop() {
			a := newAlarm()
			c.arm(a, c.now()+int64(hb))
			c.stop(a)
		}
	})
	b.Run("per-stream-timers/frame", func(b *testing.B) {
		heartbeat := time.NewTimer(hb)
		defer heartbeat.Stop()
		b.ReportAllocs()
		for b.Loop() {
			heartbeat.Reset(hb)
		}
	})
	b.Run("alarm-clock/frame", func(b *testing.B) {
		c := newAlarmClock()
		var lastSend int64
		b.ReportAllocs()
		for b.Loop() {
			lastSend = c.now()
		}
		_ = lastSend
	})
}
