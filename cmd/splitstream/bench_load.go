package main

import (
	"context"
	"encoding/json"
	"os"

	"github.com/splitstream/splitstream/bench/load"
)

func init() {
	register(command{name: "bench load", summary: "N edges x M images against one cloud on loopback: lost, overloaded, retries, goodput, latency", run: runBenchLoad})
}

func runBenchLoad(ctx context.Context, args []string) error {
	fs := newFlagSet("bench load", "[--edges N] [--images M] [flags]",
		"Run N edge agents (goroutines, one QUIC connection each) sending M requests each to one\n"+
			"cloud on loopback, with the test bundle whose graphs take --delay each (package bench/load).")
	var c load.Config
	fs.IntVar(&c.Edges, "edges", 32, "edge agents")
	fs.IntVar(&c.Images, "images", 500, "requests per edge")
	fs.IntVar(&c.Concurrency, "concurrency", 4, "window of requests in flight per edge")
	fs.IntVar(&c.Queue, "queue", 0, "the cloud's queue (0: its default, 64; -1: unbounded)")
	fs.IntVar(&c.Workers, "workers", 0, "the cloud's workers (0: one per CPU)")
	fs.DurationVar(&c.Delay, "delay", 0, "time each graph run takes (0: 2ms)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := fs.Parse(args); err != nil {
		return err
	}
	r, err := load.Run(ctx, c)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(os.Stdout).Encode(r)
	}
	r.WriteText(os.Stdout)
	return nil
}
