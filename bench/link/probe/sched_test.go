package probe_test

import (
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/splitstream/splitstream/bench/link/probe"
)

// TestCPUWatchSeesOtherProcesses runs a child process that spins on every
// CPU for a second: the watch must call the machine busy and name the
// share, while this process only waits.
func TestCPUWatchSeesOtherProcesses(t *testing.T) {
	if _, err := os.Stat("/proc/stat"); err != nil {
		t.Skip("SKIPPED: no /proc/stat")
	}
	w := probe.WatchCPU()
	cmd := exec.Command(os.Args[0], "-test.run=^TestSpinHelper$")
	cmd.Env = append(os.Environ(), "PROBE_SPIN_HELPER=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("spinning child: %v\n%s", err, out)
	}
	busy, figures := w.Busy()
	t.Logf("while a child spun on %d CPUs: %s", runtime.NumCPU(), figures)
	if !busy || !strings.Contains(figures, "other processes took") {
		t.Errorf("Busy() = %v, %q after a child spun on every CPU, want busy", busy, figures)
	}
}

// TestSpinHelper keeps every CPU busy for a second; TestCPUWatchSeesOtherProcesses
// runs it in a child process.
func TestSpinHelper(t *testing.T) {
	if os.Getenv("PROBE_SPIN_HELPER") != "1" {
		t.Skip("run by TestCPUWatchSeesOtherProcesses")
	}
	var wg sync.WaitGroup
	end := time.Now().Add(time.Second)
	for range runtime.NumCPU() {
		wg.Go(func() {
			for time.Now().Before(end) {
			}
		})
	}
	wg.Wait()
}
