package native

import "syscall"

// osYield gives the CPU to another runnable thread (sched_yield): a
// spinning worker must not hold a core that the thread it waits for needs.
func osYield() { syscall.RawSyscall(syscall.SYS_SCHED_YIELD, 0, 0, 0) }
