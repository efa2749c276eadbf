package native

import (
	"sync/atomic"
	"syscall"
	"unsafe"
)

// osYield gives the CPU to another runnable thread (sched_yield): a
// spinning worker must not hold a core that the thread it waits for needs.
func osYield() { syscall.RawSyscall(syscall.SYS_SCHED_YIELD, 0, 0, 0) }

// parker is a one-token semaphore on which a team worker parks. It blocks
// the worker's thread in futex(2) and the dispatcher wakes that thread
// directly: a goroutine parked on a channel is woken through the Go
// scheduler, which measured 1.5-3 ms here when the other core had been
// idle for a few milliseconds (against 30-80 us for the futex), long
// enough for the caller to run most of a step alone.
type parker struct{ token uint32 }

const (
	futexWaitPrivate = 128 // FUTEX_WAIT | FUTEX_PRIVATE_FLAG
	futexWakePrivate = 129 // FUTEX_WAKE | FUTEX_PRIVATE_FLAG
)

// park blocks until a token is there and takes it.
func (p *parker) park() {
	for !atomic.CompareAndSwapUint32(&p.token, 1, 0) {
		// Returns at once if the token arrived meanwhile (EAGAIN);
		// EINTR and spurious wake-ups loop.
		syscall.Syscall6(syscall.SYS_FUTEX, uintptr(unsafe.Pointer(&p.token)), futexWaitPrivate, 0, 0, 0, 0)
	}
}

// unpark leaves a token (at most one is kept) and wakes the parked thread.
func (p *parker) unpark() {
	if atomic.SwapUint32(&p.token, 1) == 0 {
		syscall.RawSyscall6(syscall.SYS_FUTEX, uintptr(unsafe.Pointer(&p.token)), futexWakePrivate, 1, 0, 0, 0)
	}
}
