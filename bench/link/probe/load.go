package probe

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// Oversubscribed reports whether the machine's one-minute load average
// exceeds its CPU count (Linux only; elsewhere it reports false), and the
// figures, for a warning: timing measurements on such a machine say more
// about the other load than about the link.
func Oversubscribed() (bool, string) {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return false, ""
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return false, ""
	}
	load, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return false, ""
	}
	n := runtime.NumCPU()
	return load > float64(n), fmt.Sprintf("load average %.2f on %d CPUs", load, n)
}
