package link

import (
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// preciseThread prepares the calling goroutine for fineSleep: it locks it to
// its OS thread and sets the thread's timer slack to 1 ns (the default is
// 50 µs), so that nanosleep(2) wakes within some tens of microseconds. The
// goroutine never unlocks, so the thread, with its changed slack, ends with
// it and is not reused.
func preciseThread() {
	runtime.LockOSThread()
	_ = unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0) // without it, sleeps are only 50 µs less precise
}

// fineSleep sleeps for about d with nanosleep(2), which on Linux wakes far
// closer to the requested time than Go's timers (these round sleeps under a
// millisecond up to about 1.1 ms).
var fineSleep = func(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	_ = syscall.Nanosleep(&ts, nil) // an interrupted sleep only ends early
}
