// Command splitstream is the split-computing runtime: one binary whose
// subcommands run the edge agent, the cloud server, the bench and the tools.
// It parses flags, wires the packages together and prints their output; the
// work itself lives in the packages.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
)

// command is one subcommand: "eval", or "bench links" in a group. Each lives
// in its own file and registers itself in init.
type command struct {
	name, summary string
	run           func(ctx context.Context, args []string) error
}

var commands = map[string]command{}

func register(c command) { commands[c.name] = c }

// groups are the words that only group commands.
var groups = map[string]string{
	"bench":   "measure engines, links and strategies",
	"certs":   "development certificates",
	"entropy": "entropy-coder tools",
}

// errUsage marks an error already explained by a usage message.
var errUsage = errors.New("usage")

// usage lists the commands whose names start with prefix ("" or "bench ").
func usage(prefix string) {
	fmt.Fprintf(os.Stderr, "splitstream: split computing between an edge device and the cloud.\n\nUsage:\n  splitstream %sCOMMAND [flags]\n\nCommands:\n", prefix)
	lines := map[string]string{}
	for name, c := range commands {
		if rest, ok := strings.CutPrefix(name, prefix); ok {
			if group, _, sub := strings.Cut(rest, " "); sub {
				lines[group] = groups[group]
			} else {
				lines[rest] = c.summary
			}
		}
	}
	for _, n := range slices.Sorted(maps.Keys(lines)) {
		fmt.Fprintf(os.Stderr, "  %-22s %s\n", n, lines[n])
	}
	fmt.Fprintf(os.Stderr, "\nRun 'splitstream %sCOMMAND --help' for its flags.\n", prefix)
}

func main() {
	args, prefix := os.Args[1:], ""
	for len(args) > 0 && groups[args[0]] != "" && commands[prefix+args[0]].run == nil {
		prefix, args = prefix+args[0]+" ", args[1:]
	}
	c, ok := commands[prefix+first(args)]
	if !ok {
		help := slices.Contains([]string{"-h", "--help", "help"}, first(args))
		if !help && first(args) != "" {
			fmt.Fprintf(os.Stderr, "splitstream: unknown command %q\n\n", prefix+first(args))
		}
		usage(prefix)
		if !help {
			os.Exit(2)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := c.run(ctx, args[1:]); err != nil && !errors.Is(err, flag.ErrHelp) {
		if !errors.Is(err, errUsage) {
			fmt.Fprintf(os.Stderr, "splitstream %s: %v\n", c.name, err)
		}
		stop()
		os.Exit(1)
	}
}

func first(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return args[0]
}
