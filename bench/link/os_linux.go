package link

import (
	"net"
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

// socketBuffer is the receive and send buffer the relay asks for, so that
// bursts and brief stalls of the relay do not overflow its sockets.
const socketBuffer = 4 << 20

// growBuffers enlarges a socket's buffers: past the system's limit
// (net.core.rmem_max) where the process may (CAP_NET_ADMIN), else up to it.
func growBuffers(c *net.UDPConn) {
	c.SetReadBuffer(socketBuffer)
	c.SetWriteBuffer(socketBuffer)
	raw, err := c.SyscallConn()
	if err != nil {
		return
	}
	raw.Control(func(fd uintptr) {
		unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, socketBuffer)
		unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, socketBuffer)
	})
}
