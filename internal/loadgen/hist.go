package loadgen

import (
	"math"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
)

// hist is a fixed-memory latency histogram with the peers' buckets: 10 µs
// wide below 100 ms, 1 ms wide up to 120 s (beyond that, the last bucket).
// Add is lock-free and allocation-free; the quantiles it reports match the
// peers' generators bucket for bucket, so the tables compare like for like.
type hist struct {
	fine   [10000]atomic.Int64
	coarse [120000]atomic.Int64
	n      atomic.Int64
	max    atomic.Int64
}

// add records one latency in microseconds; negative values count as 0.
func (h *hist) add(us int64) {
	if us < 0 {
		us = 0
	}
	h.n.Add(1)
	for {
		m := h.max.Load()
		if us <= m || h.max.CompareAndSwap(m, us) {
			break
		}
	}
	if us < 100_000 {
		h.fine[us/10].Add(1)
		return
	}
	h.coarse[min(us/1000, int64(len(h.coarse)-1))].Add(1)
}

// maxMs returns the largest latency in ms, NaN when empty.
func (h *hist) maxMs() float64 {
	if h.n.Load() == 0 {
		return math.NaN()
	}
	return float64(h.max.Load()) / 1000
}

// quantile returns quantile p in ms (the middle of its bucket), NaN when
// empty.
func (h *hist) quantile(p float64) float64 {
	n := h.n.Load()
	if n == 0 {
		return math.NaN()
	}
	target := int64(math.Ceil(p * float64(n)))
	var acc int64
	for i := range h.fine {
		if acc += h.fine[i].Load(); acc >= target {
			return (float64(i)*10 + 5) / 1000
		}
	}
	for i := 100; i < len(h.coarse); i++ {
		if acc += h.coarse[i].Load(); acc >= target {
			return float64(i) + 0.5
		}
	}
	return h.maxMs()
}

// cpuSeconds returns utime+stime of pid from /proc/<pid>/stat, NaN when it
// cannot be read (no pid, not Linux).
func cpuSeconds(pid int) float64 {
	if pid <= 0 {
		return math.NaN()
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return math.NaN()
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 > len(s) {
		return math.NaN()
	}
	f := strings.Fields(s[i+2:])
	if len(f) < 13 {
		return math.NaN()
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (u + st) / 100 // USER_HZ is 100 on Linux
}

// rssBytes returns VmRSS of pid in bytes, NaN when it cannot be read.
func rssBytes(pid int) float64 {
	if pid <= 0 {
		return math.NaN()
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return math.NaN()
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, _ := strconv.ParseFloat(f[0], 64)
				return kb * 1024
			}
		}
	}
	return math.NaN()
}
