package main

import (
	"context"
	"fmt"
	"os"
	"sort"
)

// benchMode is one `splitstream bench MODE` sub-subcommand; each registers
// itself in init from its own file (bench_engine.go, ...).
type benchMode struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string) error
}

var benchModes = map[string]benchMode{}

func registerBench(m benchMode) {
	if _, dup := benchModes[m.name]; dup {
		panic("duplicate bench mode " + m.name)
	}
	benchModes[m.name] = m
}

func init() {
	register(command{name: "bench", summary: "measure engines, links and strategies (bench MODE --help)", run: runBench})
}

func benchUsage() {
	fmt.Fprintf(os.Stderr, "Measure the parts of splitstream.\n\nUsage:\n  splitstream bench MODE [flags]\n\nModes:\n")
	names := make([]string, 0, len(benchModes))
	for n := range benchModes {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-10s %s\n", n, benchModes[n].summary)
	}
	fmt.Fprintf(os.Stderr, "\nRun 'splitstream bench MODE --help' for the flags of a mode.\n")
}

func runBench(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		benchUsage()
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	m, ok := benchModes[args[0]]
	if !ok {
		fmt.Fprintf(os.Stderr, "splitstream bench: unknown mode %q\n\n", args[0])
		benchUsage()
		return errUsage
	}
	return m.run(ctx, args[1:])
}
