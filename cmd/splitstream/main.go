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

// command is one subcommand, named by one or two words ("eval", "bench
// links"). Each lives in its own file and registers itself in init.
type command struct {
	name, summary string
	run           func(ctx context.Context, args []string) error
}

var commands = map[string]command{}

func register(c command) { commands[c.name] = c }

// errUsage marks an error already explained by a usage message.
var errUsage = errors.New("usage")

// usage lists the commands whose names start with prefix.
func usage(prefix string) {
	fmt.Fprintf(os.Stderr, "splitstream: split computing between an edge device and the cloud.\n\nUsage:\n  splitstream COMMAND [flags]\n\nCommands:\n")
	var names []string
	for name := range commands {
		if strings.HasPrefix(name, prefix) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-22s %s\n", n, commands[n].summary)
	}
	fmt.Fprintf(os.Stderr, "\nRun 'splitstream COMMAND --help' for its flags.\n")
}

func main() {
	args := os.Args[1:]
	c, ok := commands[strings.Join(args[:min(len(args), 1)], "")]
	if !ok && len(args) >= 2 {
		c, ok = commands[args[0]+" "+args[1]]
		args = args[1:]
	}
	if !ok {
		help := len(args) > 0 && slices.Contains([]string{"-h", "--help", "help"}, args[len(args)-1])
		prefix := "" // a group's commands when os.Args[1] names one ("bench")
		if len(os.Args) > 1 && slices.ContainsFunc(slices.Collect(maps.Keys(commands)), func(n string) bool { return strings.HasPrefix(n, os.Args[1]+" ") }) {
			prefix = os.Args[1] + " "
		}
		if len(os.Args) > 1 && !help && (prefix == "" || len(os.Args) > 2) {
			fmt.Fprintf(os.Stderr, "splitstream: unknown command %q\n\n", strings.Join(os.Args[1:min(len(os.Args), 3)], " "))
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
