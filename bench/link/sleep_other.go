//go:build !linux

package link

import "time"

func preciseThread() {}

// fineSleep is nil where there is no sleep finer than Go's timers: the
// release goroutine spins instead.
var fineSleep func(time.Duration)
