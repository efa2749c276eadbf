package main

import (
	"context"
	"os"
	"time"

	"github.com/splitstream/splitstream/bench/trace"
	"github.com/splitstream/splitstream/bundle"
)

func init() {
	register(command{name: "bench trace", summary: "a camera workload over recorded cellular traces: every fixed strategy and the adaptive policy, scored by answers in time",
		run: func(ctx context.Context, args []string) error { return benchTrace(ctx, args) }})
}

const benchTraceSummary = "Frames arrive at --fps from the test set (the seed's order, cycling) for --duration. Every\n" +
	"fixed strategy (edge-only with --edge-full, input offload to the full bundle, each learned\n" +
	"rate point) and adaptive (edge/policy choosing per frame) run at once, each over its own\n" +
	"relay replaying the --up and --down traces with --rtt. Compute is measured once per frame\n" +
	"and point in a calibration and replayed as waits; the network is real QUIC (docs/ADAPTIVE.md).\n" +
	"Reports useful_rate (answered in --slo with the correct top-1, over all frames), slo_hit_rate,\n" +
	"top1_answered, dropped, errors and p50/p95/p99 latency per strategy."

func benchTrace(ctx context.Context, args []string) error {
	fs := newFlagSet("bench trace", "--up F --down F [--rtt 50ms] [--slo 150ms] [--fps 10] [--duration 120s] [flags]", benchTraceSummary)
	c := trace.Command{Args: args}
	var dirs listFlag
	fs.StringVar(&c.UpFile, "up", "", "uplink trace `file` (mahimahi mm-link format)")
	fs.StringVar(&c.DownFile, "down", "", "downlink trace `file`")
	fs.DurationVar(&c.RTT, "rtt", 50*time.Millisecond, "base round-trip time, half each way")
	fs.StringVar(&c.Queue, "queue", "100p", "drop-tail queue of each direction: bytes (64KiB) or packets (100p); 0: none")
	fs.DurationVar(&c.SLO, "slo", 150*time.Millisecond, "a frame's deadline, from its arrival")
	fs.Float64Var(&c.FPS, "fps", 10, "frames per second")
	fs.DurationVar(&c.Duration, "duration", 120*time.Second, "how long frames arrive")
	fs.DurationVar(&c.Timeout, "timeout", time.Second, "a request not answered this long after its frame's compute fails")
	fs.BoolVar(&c.EdgeFull, "edge-full", true, "the edge holds the full model (edge-only is a point); false: the usual split-computing case")
	fs.Float64Var(&c.Slowdown, "edge-slowdown", 1, "multiply the measured edge compute by this `factor` (docs/DEVICES.md)")
	fs.Var(&dirs, "bundle", "bundle `dirs`: one full bundle and the split bundles (default: every bundle under "+bundle.ZooDir+")")
	fs.StringVar(&c.JPEGQ, "jpeg-q", "10,50,90", "JPEG `qualities` of the input offloads")
	fs.StringVar(&c.WebPQ, "webp-q", "10,50,90", "WebP `qualities` of the input offloads")
	fs.IntVar(&c.Images, "images", 0, "test images in the cycle (0: as many as frames, at most the test set)")
	fs.Uint64Var(&c.Seed, "seed", 1, "seed of the image order and of the relays")
	engine := engineFlag(fs)
	fs.StringVar(&c.Out, "out", "", "`dir` for report.json, report.md and timeline.png")
	fs.BoolVar(&c.JSON, "json", false, "print the rows as one JSON array (trace, strategy, frames, useful_rate, slo_hit_rate, top1_answered, p50_ms, p95_ms, p99_ms, dropped, errors, ...)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 || c.UpFile == "" || c.DownFile == "" || c.Slowdown <= 0 {
		fs.Usage()
		return errUsage
	}
	c.Engine, c.Bundles = *engine, dirs
	return c.Execute(ctx, os.Stdout, os.Stderr)
}
