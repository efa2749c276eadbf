//go:build unix

package probe

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// Exclusive takes a machine-wide lock (flock on a file in os.TempDir) that
// serialises timing measurements across processes, so that two benches or
// test packages measuring at once do not starve each other. It waits until
// the lock is free or ctx is done; release gives it back.
func Exclusive(ctx context.Context) (release func(), err error) {
	path := filepath.Join(os.TempDir(), "splitstream-timing.lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, fmt.Errorf("timing lock: %w", err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing drops the lock
		}
		if err != syscall.EWOULDBLOCK && err != syscall.EINTR {
			f.Close()
			return nil, fmt.Errorf("timing lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("timing lock %s: %w", path, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
