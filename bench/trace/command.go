package trace

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/splitstream/splitstream/bench/link"
	"github.com/splitstream/splitstream/bundle"
	"github.com/splitstream/splitstream/models"
)

// Synopsis and Help describe the command that runs a Command.
const (
	Synopsis = "--up F --down F [--rtt 50ms] [--slo 150ms] [--fps 10] [--duration 120s] [flags]"
	Help     = "Frames arrive at --fps from the test set (the seed's order, cycling) for --duration. Every\n" +
		"fixed strategy (edge-only with --edge-full, input offload to the full bundle, each learned\n" +
		"rate point) and adaptive (edge/policy choosing per frame) run at once, each over its own\n" +
		"relay replaying the --up and --down traces with --rtt. Compute is measured once per frame\n" +
		"and point in a calibration and replayed as waits; the network is real QUIC (docs/ADAPTIVE.md).\n" +
		"Reports useful_rate (answered in --slo with the correct top-1, over all frames), slo_hit_rate,\n" +
		"top1_answered, dropped, errors and p50/p95/p99 latency per strategy."
)

// Flags registers the command's flags on fs and returns the Command they
// fill; Execute checks what they say.
func Flags(fs *flag.FlagSet) *Command {
	c := &Command{}
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
	fs.Func("bundle", "bundle `dirs`, comma-separated or repeated: one full bundle and the split bundles (default: every bundle under "+bundle.ZooDir+")", func(v string) error {
		c.Bundles = append(c.Bundles, strings.Split(v, ",")...)
		return nil
	})
	fs.StringVar(&c.JPEGQ, "jpeg-q", "10,50,90", "JPEG `qualities` of the input offloads")
	fs.StringVar(&c.WebPQ, "webp-q", "10,50,90", "WebP `qualities` of the input offloads")
	fs.IntVar(&c.Images, "images", 0, "test images in the cycle (0: as many as frames, at most the test set)")
	fs.Uint64Var(&c.Seed, "seed", 1, "seed of the image order and of the relays")
	fs.StringVar(&c.Engine, "engine", models.Native, "inference engine: native or ort")
	fs.StringVar(&c.Out, "out", "", "`dir` for report.json, report.md and timeline.png")
	fs.BoolVar(&c.JSON, "json", false, "print the rows as one JSON array (trace, strategy, frames, useful_rate, slo_hit_rate, top1_answered, p50_ms, p95_ms, p99_ms, dropped, errors, ...)")
	return c
}

// Command is a `splitstream bench trace` run as its flags give it.
type Command struct {
	Options
	UpFile, DownFile, Queue string
	Bundles                 []string
	JPEGQ, WebPQ            string
	EdgeFull, JSON          bool
	Out                     string // report directory; empty: none
	Args                    []string
}

// Execute loads the traces and bundles, runs the bench, writes the report
// to Out and prints the rows to stdout (a table, or JSON); progress goes to
// stderr.
func (c *Command) Execute(ctx context.Context, stdout, stderr io.Writer) error {
	if c.UpFile == "" || c.DownFile == "" || !(c.Slowdown > 0) {
		return errors.New("bench trace: --up and --down are required, and --edge-slowdown must be above 0")
	}
	o := c.Options
	var err error
	if o.Up, err = link.LoadTrace(c.UpFile); err != nil {
		return err
	}
	if o.Down, err = link.LoadTrace(c.DownFile); err != nil {
		return err
	}
	if o.Queue, err = link.ParseQueue(c.Queue); err != nil {
		return err
	}
	if o.Strategies, _, err = Strategies(c.Bundles, c.JPEGQ, c.WebPQ, c.EdgeFull); err != nil {
		return err
	}
	o.Progress = stderr
	meta := Meta{Command: "splitstream bench trace " + strings.Join(c.Args, " "), Date: time.Now().UTC().Format(time.RFC3339),
		LoadBefore: LoadAvg(), EdgeFull: c.EdgeFull}
	run, err := Bench(ctx, o)
	if err != nil {
		return err
	}
	meta.LoadAfter = LoadAvg()
	rep := run.NewReport(meta)
	if c.Out != "" {
		written, err := run.WriteFiles(c.Out, rep)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "bench trace: wrote %s\n", strings.Join(written, ", "))
	}
	if c.JSON {
		return WriteJSON(stdout, rep.Rows)
	}
	return WriteMarkdown(stdout, rep)
}
