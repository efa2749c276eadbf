//go:build !linux

package native

import "runtime"

// osYield lets other goroutines run; the OS thread yield is Linux only.
func osYield() { runtime.Gosched() }
