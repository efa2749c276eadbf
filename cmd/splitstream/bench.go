package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/splitstream/splitstream/bench/engine"
	"github.com/splitstream/splitstream/bench/load"
	"github.com/splitstream/splitstream/bench/report"
	"github.com/splitstream/splitstream/bench/scaleout"
	"github.com/splitstream/splitstream/bench/sweep"
	"github.com/splitstream/splitstream/bench/trace"
	"github.com/splitstream/splitstream/bundle"
)

func init() {
	register(command{name: "bench trace", summary: "a camera workload over recorded cellular traces: every fixed strategy and the adaptive policy, scored by answers in time", run: runBenchTrace})
	register(command{name: "bench engine", summary: "time inference engines on ONNX graphs, interleaved",
		run: func(ctx context.Context, args []string) error { return benchEngine(ctx, args, os.Stdout) }})
	register(command{name: "bench links", summary: "each strategy (edge only, input offload, feature offload, learned codec) over emulated links: accuracy, bytes, latency",
		run: func(ctx context.Context, args []string) error { return benchLinks(ctx, args, os.Stdout, os.Stderr) }})
	register(command{name: "bench load", summary: "N edges x M images against one cloud on loopback: lost, overloaded, retries, goodput, latency", run: runBenchLoad})
	register(command{name: "bench scaleout", summary: "N cloud replicas behind nginx, M edges, one replica drained or crashed mid-run: lost, duplicates, retried, latency", run: runBenchScaleout})
}

func benchEngine(ctx context.Context, args []string, w io.Writer) error {
	fs := newFlagSet("bench engine", engine.Synopsis, engine.Help)
	c := engine.Flags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	err := errUsage
	if fs.NArg() == 0 {
		err = c.Execute(ctx, w, os.Stderr)
	}
	if errors.Is(err, errUsage) || errors.Is(err, engine.ErrUsage) {
		fs.Usage()
		return errUsage
	}
	return err
}

const benchLinksSummary = "Measure each strategy end to end through the real edge agent, codecs, QUIC and cloud server\n" +
	"(in one process, on loopback) over emulated links: edge only (the full model on the edge),\n" +
	"input offload (PNG, JPEG, WebP to the full bundle), feature offload (raw float32 latent,\n" +
	"int8 + zstd) and the learned codec of every split bundle. For each strategy and link it\n" +
	"reports top-1, mAP@0.5, mIoU, bytes per image, p50/p95 latency with its breakdown, and the\n" +
	"runtime's overhead: latency - (edge compute + bytes x 8 / rate + RTT + cloud compute).\n" +
	"Accuracy and bytes come from --images test images sent once per strategy (they do not\n" +
	"depend on the link); latency from the first --timed of them, one request at a time per\n" +
	"strategy and link. Writes report.csv, report.json, report.md and two PNG plots to --out;\n" +
	"progress goes to stderr. See docs/DEVICES.md for weak edge devices."

// linksRun is a bench links run as its flags describe it.
type linksRun struct {
	o                          sweep.Options
	links                      sweep.LinkSet
	dirs                       listFlag
	feature, jpegQ, webpQ, out string
	asJSON                     bool
}

func benchLinks(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench links", "[--bundle DIR ...] [--rates 0.5,1,2,5,10,20,50] [--rtt 50ms] [--loss 0] [--profiles SPECS] [flags]", benchLinksSummary)
	r := linksRun{o: sweep.Options{Progress: stderr}}
	fs.Var(&r.dirs, "bundle", "bundle `dirs`, comma-separated or repeated: one full (teacher) bundle and any split bundles (default: every bundle under "+bundle.ZooDir+")")
	fs.StringVar(&r.feature, "feature-bundle", "", "split bundle `name` whose latent the feature-offload strategies send (default: the first split bundle by name)")
	fs.StringVar(&r.links.Rates, "rates", "0.5,1,2,5,10,20,50", "uplink and downlink `rates` in Mbit/s, one link each (headers counted as in bench/link)")
	fs.DurationVar(&r.links.RTT, "rtt", 50*time.Millisecond, "round-trip time of the --rates links, half each way")
	fs.StringVar(&r.links.Loss, "loss", "0", "random loss each way of the --rates links: a probability or a percentage")
	fs.StringVar(&r.links.Profiles, "profiles", "", "links by profile name or bench/link spec (docs/LINKS.md), ';'-separated (names may also be ','-separated); without an explicit --rates, only these links are run")
	fs.IntVar(&r.o.Images, "images", 500, "test images for accuracy and bytes per image, in the seed's order")
	fs.IntVar(&r.o.Timed, "timed", 20, "of those, images timed per strategy and link")
	fs.Uint64Var(&r.o.Seed, "seed", 1, "seed of the image order and of the links' loss and jitter")
	fs.StringVar(&r.jpegQ, "jpeg-q", "10,50,90", "JPEG `qualities`")
	fs.StringVar(&r.webpQ, "webp-q", "10,50,90", "WebP `qualities`")
	fs.IntVar(&r.o.EdgeThreads, "edge-threads", 0, "threads per graph run on the edge (0: one per CPU); fewer approximate a weaker device")
	fs.IntVar(&r.o.CloudThreads, "cloud-threads", 0, "threads per graph run in the cloud (0: one per CPU)")
	fs.Float64Var(&r.o.Slowdown, "edge-slowdown", 1, "multiply the measured edge compute by this `factor` (docs/DEVICES.md); reports label it")
	fs.BoolVar(&r.o.NetNS, "netns", false, "emulate each link with network namespaces and tbf instead of the user-space relay (root only)")
	engine := engineFlag(fs)
	fs.StringVar(&r.out, "out", "bench-links", "`dir` for report.csv, report.json, report.md and the plots")
	fs.BoolVar(&r.asJSON, "json", false, "print the rows as one JSON array on stdout (keys strategy, rate_mbps, rtt_ms, top1, bytes_per_image, p50_ms, p95_ms, overhead_ms, and more)")
	verbose := fs.Bool("v", false, "log the runtime's warnings")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 || r.o.Images < 1 || r.o.Timed < 1 || r.o.Slowdown <= 0 {
		fs.Usage()
		return errUsage
	}
	fs.Visit(func(f *flag.Flag) { r.links.UseRates = r.links.UseRates || f.Name == "rates" })
	r.o.Engine = *engine
	if *verbose {
		r.o.Logger = slog.New(slog.NewTextHandler(stderr, nil))
	}
	return r.run(ctx, "splitstream bench links "+strings.Join(args, " "), stdout, stderr)
}

// run plans the sweep, runs it, writes its report to the out dir and
// prints the table (or the JSON rows).
func (r *linksRun) run(ctx context.Context, command string, stdout, stderr io.Writer) error {
	o := r.o
	var names []string
	var err error
	if o.Links, err = r.links.Links(); err == nil && len(o.Links) == 0 {
		err = fmt.Errorf("no links: give --rates or --profiles")
	}
	if err == nil {
		o.Strategies, names, err = sweep.PlanDirs(r.dirs, r.feature, r.jpegQ, r.webpQ)
	}
	if err != nil {
		return err
	}
	mode := map[bool]string{false: "relay", true: "netns"}[o.NetNS]
	fmt.Fprintf(stderr, "bench links: %d strategies x %d links, %d images for accuracy, %d timed per point, mode %s\n",
		len(o.Strategies), len(o.Links), o.Images, o.Timed, mode)
	if o.Slowdown != 1 {
		fmt.Fprintf(stderr, "bench links: edge compute scaled x%.2f (emulated weak edge, not measured)\n", o.Slowdown)
	}
	rep, err := sweep.Report(ctx, o, report.Meta{Command: command, Mode: mode, Engine: o.Engine, Seed: o.Seed,
		Images: o.Images, Timed: o.Timed, EdgeThreads: o.EdgeThreads, Slowdown: o.Slowdown, Bundles: names})
	if err != nil {
		return err
	}
	written, err := report.WriteFiles(r.out, *rep)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "bench links: %.0f s; wrote %s\n", rep.Meta.Seconds, strings.Join(written, ", "))
	if r.asJSON {
		return report.WriteJSON(stdout, rep.Rows)
	}
	return report.WriteTable(stdout, *rep)
}

func runBenchLoad(ctx context.Context, args []string) error {
	fs := newFlagSet("bench load", load.Synopsis, load.Help)
	c := load.Flags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	return c.Main(ctx, os.Stdout)
}

func runBenchTrace(ctx context.Context, args []string) error {
	fs := newFlagSet("bench trace", trace.Synopsis, trace.Help)
	c := trace.Flags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	c.Args = args
	return c.Execute(ctx, os.Stdout, os.Stderr)
}

func runBenchScaleout(ctx context.Context, args []string) error {
	fs := newFlagSet("bench scaleout", scaleout.Synopsis, scaleout.Help)
	c := scaleout.Flags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	return c.Main(ctx, os.Stdout, os.Stderr)
}
