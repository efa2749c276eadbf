package link

import (
	"syscall"
	"time"
)

// fineSleep sleeps for about d with nanosleep(2), which on Linux wakes
// within about 0.1 ms (timer slack included), much closer than Go's timers
// for sleeps of a millisecond or less.
var fineSleep = func(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	_ = syscall.Nanosleep(&ts, nil) // an interrupted sleep only ends early
}
