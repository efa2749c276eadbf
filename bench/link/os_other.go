//go:build !linux

package link

import (
	"net"
	"time"
)

func preciseThread() {}

// fineSleep is nil where there is no sleep finer than Go's timers: the
// release goroutine spins instead.
var fineSleep func(time.Duration)

// growBuffers asks for larger socket buffers, up to the system's limit.
func growBuffers(c *net.UDPConn) {
	c.SetReadBuffer(4 << 20)
	c.SetWriteBuffer(4 << 20)
}
