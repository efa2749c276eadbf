package probe

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// busyShare is the share of the machine's CPU time, taken by other
// processes (or by a hypervisor, as steal), above which a CPUWatch calls the
// machine busy: a quarter is half a core on a 2-core machine.
const busyShare = 0.25

// clockTick is the unit of /proc/stat and /proc/self/stat (USER_HZ, 100 on
// every Linux architecture Go supports).
const clockTick = 10 * time.Millisecond

// CPUWatch measures how much CPU time everything but this process took over
// a stretch of time, as a share of what the machine's CPUs offered (Linux's
// /proc/stat less /proc/self/stat). Timing measurements (link emulation,
// latency benches) taken while other work held the CPUs say more about that
// work than about the link. Where /proc is missing, it falls back to the
// one-minute load average at the end.
type CPUWatch struct {
	start       time.Time
	startOthers time.Duration
	ok          bool
}

// WatchCPU starts a watch; Busy reads it.
func WatchCPU() CPUWatch {
	others, ok := othersCPU()
	return CPUWatch{start: time.Now(), startOthers: others, ok: ok}
}

// Busy reports whether other work took more than a quarter of the CPUs since
// the watch started, with the figures for a message.
func (w CPUWatch) Busy() (busy bool, figures string) {
	others, ok := othersCPU()
	if !ok || !w.ok {
		return loadAbove(float64(runtime.NumCPU()))
	}
	wall := time.Since(w.start)
	share := float64(others-w.startOthers) / (float64(wall) * float64(runtime.NumCPU()))
	return share > busyShare, fmt.Sprintf("other processes took %.0f%% of %d CPUs over the last %.1f s",
		max(0, share)*100, runtime.NumCPU(), wall.Seconds())
}

// othersCPU returns the CPU time the machine spent busy since boot (steal
// included) less the time this process used; its child processes count as
// others.
func othersCPU() (time.Duration, bool) {
	machine, ok := procTicks("/proc/stat", func(s string) ([]string, bool) {
		line, _, _ := strings.Cut(s, "\n")
		rest, ok := strings.CutPrefix(line, "cpu ")
		// user nice system idle iowait irq softirq steal: all but idle and iowait
		f := strings.Fields(rest)
		if !ok || len(f) < 8 {
			return nil, false
		}
		return []string{f[0], f[1], f[2], f[5], f[6], f[7]}, true
	})
	if !ok {
		return 0, false
	}
	self, ok := procTicks("/proc/self/stat", func(s string) ([]string, bool) {
		// after "pid (comm) ", field 3 is the state; utime and stime are
		// fields 14 and 15
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			return nil, false
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 15 {
			return nil, false
		}
		return f[11:13], true
	})
	if !ok {
		return 0, false
	}
	return time.Duration(machine-self) * clockTick, true
}

// procTicks reads path, picks fields from it and sums them.
func procTicks(path string, pick func(string) ([]string, bool)) (int64, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	fields, ok := pick(string(b))
	if !ok {
		return 0, false
	}
	var sum int64
	for _, f := range fields {
		v, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, false
		}
		sum += v
	}
	return sum, true
}

// loadAbove reports whether the one-minute load average exceeds limit
// (Linux only; elsewhere it reports false).
func loadAbove(limit float64) (bool, string) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return false, "no load figures"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return false, "no load figures"
	}
	load, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return false, "no load figures"
	}
	return load > limit, fmt.Sprintf("load average %.2f on %d CPUs", load, runtime.NumCPU())
}
