package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/splitstream/splitstream/bench/link/probe"
	"github.com/splitstream/splitstream/bench/report"
	"github.com/splitstream/splitstream/bench/sweep"
	"github.com/splitstream/splitstream/bundle"
)

func init() {
	registerBench(benchMode{name: "links", summary: "each strategy (edge only, input offload, feature offload, learned codec) over emulated links: accuracy, bytes, latency", run: runBenchLinks})
}

func runBenchLinks(ctx context.Context, args []string) error {
	return benchLinks(ctx, args, os.Stdout, os.Stderr)
}

// listFlag is a comma-separated flag that may also be repeated.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

func parseFloats(s string) ([]float64, error) {
	var out []float64
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v == "" {
			continue
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || !(f > 0) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("%q is not a positive number", v)
		}
		out = append(out, f)
	}
	return out, nil
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return nil, fmt.Errorf("quality %q is not in 1..100", v)
		}
		out = append(out, n)
	}
	return out, nil
}

// parseProfiles splits --profiles: link specs separated by ';', and bare
// profile names also by ','.
func parseProfiles(s string) ([]sweep.Link, error) {
	var out []sweep.Link
	for _, part := range strings.Split(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		specs := []string{part}
		if !strings.Contains(part, "=") {
			specs = strings.Split(part, ",")
		}
		for _, spec := range specs {
			l, err := sweep.ParseLink(strings.TrimSpace(spec))
			if err != nil {
				return nil, err
			}
			out = append(out, l)
		}
	}
	return out, nil
}

func parseLoss(s string) (float64, error) {
	pct := strings.HasSuffix(s, "%")
	v, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if pct {
		v /= 100
	}
	if err != nil || v < 0 || v >= 1 {
		return 0, fmt.Errorf("loss %q: want a probability in [0, 1) or a percentage", s)
	}
	return v, nil
}

// zooBundles lists the bundles under models/zoo.
func zooBundles() []string {
	ms, _ := filepath.Glob(filepath.Join(zooDir, "*", "manifest.json"))
	slices.Sort(ms)
	var out []string
	for _, m := range ms {
		out = append(out, filepath.Dir(m))
	}
	return out
}

func benchLinks(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench links", "[--bundle DIR ...] [--rates 0.5,1,2,5,10,20,50] [--rtt 50ms] [--loss 0] [--profiles SPECS] [flags]",
		"Measure each strategy end to end through the real edge agent, codecs, QUIC and cloud server\n"+
			"(in one process, on loopback) over emulated links: edge only (the full model on the edge),\n"+
			"input offload (PNG, JPEG, WebP to the full bundle), feature offload (raw float32 latent,\n"+
			"int8 + zstd) and the learned codec of every split bundle. For each strategy and link it\n"+
			"reports top-1, mAP@0.5, mIoU, bytes per image, p50/p95 latency with its breakdown, and the\n"+
			"runtime's overhead: latency - (edge compute + bytes x 8 / rate + RTT + cloud compute).\n"+
			"Accuracy and bytes come from --images test images sent once per strategy (they do not\n"+
			"depend on the link); latency from the first --timed of them, one request at a time per\n"+
			"strategy and link. Writes report.csv, report.json, report.md and two PNG plots to --out;\n"+
			"progress goes to stderr. See docs/DEVICES.md for weak edge devices.")
	var dirs listFlag
	fs.Var(&dirs, "bundle", "bundle `dirs`, comma-separated or repeated: one full (teacher) bundle and any split bundles (default: every bundle under models/zoo)")
	feature := fs.String("feature-bundle", "", "split bundle `name` whose latent the feature-offload strategies send (default: the first split bundle by name)")
	rates := fs.String("rates", "0.5,1,2,5,10,20,50", "uplink and downlink `rates` in Mbit/s, one link each (headers counted as in bench/link)")
	rtt := fs.Duration("rtt", 50*time.Millisecond, "round-trip time of the --rates links, half each way")
	lossS := fs.String("loss", "0", "random loss each way of the --rates links: a probability or a percentage")
	profiles := fs.String("profiles", "", "links by profile name or bench/link spec (docs/LINKS.md), ';'-separated (names may also be ','-separated); without an explicit --rates, only these links are run")
	images := fs.Int("images", 500, "test images for accuracy and bytes per image, in the seed's order")
	timed := fs.Int("timed", 20, "of those, images timed per strategy and link")
	seed := fs.Uint64("seed", 1, "seed of the image order and of the links' loss and jitter")
	jpegQ := fs.String("jpeg-q", "10,50,90", "JPEG `qualities`")
	webpQ := fs.String("webp-q", "10,50,90", "WebP `qualities`")
	edgeThreads := fs.Int("edge-threads", 0, "threads per graph run on the edge (0: one per CPU); fewer approximate a weaker device")
	cloudThreads := fs.Int("cloud-threads", 0, "threads per graph run in the cloud (0: one per CPU)")
	slowdown := fs.Float64("edge-slowdown", 1, "multiply the measured edge compute by this `factor` (docs/DEVICES.md); reports label it")
	useNetns := fs.Bool("netns", false, "emulate each link with network namespaces and tbf instead of the user-space relay (root only)")
	engine := fs.String("engine", "native", "inference engine: native (pure Go) or ort (ONNX Runtime)")
	out := fs.String("out", "bench-links", "`dir` for report.csv, report.json, report.md and the plots")
	asJSON := fs.Bool("json", false, "print the rows as one JSON array on stdout (keys strategy, rate_mbps, rtt_ms, top1, bytes_per_image, p50_ms, p95_ms, overhead_ms, and more)")
	verbose := fs.Bool("v", false, "log the runtime's warnings")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 || *images < 1 || *timed < 1 || *slowdown <= 0 {
		fs.Usage()
		return errUsage
	}
	explicit := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { explicit[f.Name] = true })

	// Links.
	loss, err := parseLoss(*lossS)
	if err != nil {
		return err
	}
	var links []sweep.Link
	if *profiles != "" {
		if links, err = parseProfiles(*profiles); err != nil {
			return err
		}
	}
	if *profiles == "" || explicit["rates"] {
		rs, err := parseFloats(*rates)
		if err != nil {
			return fmt.Errorf("--rates: %w", err)
		}
		for _, r := range rs {
			l, err := sweep.RateLink(r, *rtt, loss)
			if err != nil {
				return err
			}
			links = append(links, l)
		}
	}
	if len(links) == 0 {
		return errors.New("no links: give --rates or --profiles")
	}

	// Bundles and strategies.
	if len(dirs) == 0 {
		dirs = zooBundles()
		if len(dirs) == 0 {
			return fmt.Errorf("no bundles under %s (run from the repository root, or pass --bundle)", zooDir)
		}
	}
	var full, feat *bundle.Bundle
	var split []*bundle.Bundle
	var names []string
	for _, d := range dirs {
		b, err := bundle.Load(d)
		if err != nil {
			return err
		}
		names = append(names, b.Name)
		switch b.Kind {
		case bundle.KindFull:
			if full != nil {
				return fmt.Errorf("two full bundles (%s, %s): give one", full.Name, b.Name)
			}
			full = b
		default:
			split = append(split, b)
		}
	}
	slices.SortFunc(split, func(a, b *bundle.Bundle) int { return strings.Compare(a.Name, b.Name) })
	for _, b := range split {
		if *feature == "" || b.Name == *feature {
			feat = b
			break
		}
	}
	if *feature != "" && feat == nil {
		return fmt.Errorf("--feature-bundle %s: no such split bundle", *feature)
	}
	jq, err := parseInts(*jpegQ)
	if err != nil {
		return fmt.Errorf("--jpeg-q: %w", err)
	}
	wq, err := parseInts(*webpQ)
	if err != nil {
		return fmt.Errorf("--webp-q: %w", err)
	}
	strategies, err := sweep.Plan(full, feat, split, jq, wq)
	if err != nil {
		return err
	}

	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if *verbose {
		logger = slog.New(slog.NewTextHandler(stderr, nil))
	}
	mode := "relay"
	if *useNetns {
		mode = "netns"
	}
	fmt.Fprintf(stderr, "bench links: %d strategies x %d links, %d images for accuracy, %d timed per point, mode %s\n",
		len(strategies), len(links), *images, *timed, mode)
	if *slowdown != 1 {
		fmt.Fprintf(stderr, "bench links: edge compute scaled x%.2f (emulated weak edge, not measured)\n", *slowdown)
	}
	watch := probe.WatchCPU()
	start := time.Now()
	rows, err := sweep.Run(ctx, sweep.Options{
		Strategies: strategies, Links: links, Images: *images, Timed: *timed, Seed: *seed,
		Engine: *engine, EdgeThreads: *edgeThreads, CloudThreads: *cloudThreads, Slowdown: *slowdown,
		NetNS: *useNetns, Progress: stderr, Logger: logger,
	})
	if err != nil {
		return err
	}
	busy, cpuFigures := watch.Busy()
	rep := report.Report{Meta: report.Meta{
		Command: "splitstream bench links " + strings.Join(args, " "),
		Date:    time.Now().UTC().Format(time.RFC3339), Machine: machine() + "; during the run " + cpuFigures,
		Mode: mode, Engine: *engine, Seed: *seed, Images: *images, Timed: *timed,
		EdgeThreads: *edgeThreads, Slowdown: *slowdown, Bundles: names,
		Seconds: time.Since(start).Seconds(),
	}, Rows: rows}
	if busy {
		fmt.Fprintf(stderr, "bench links: warning: the CPUs were busy during the run (%s); latencies include waiting for a CPU\n", cpuFigures)
		rep.Meta.Notes = append(rep.Meta.Notes, fmt.Sprintf("The machine was busy during the run (%s): the latencies include time spent waiting for a CPU.", cpuFigures))
	}
	if rows[0].AccuracyImages < *images {
		rep.Meta.Notes = append(rep.Meta.Notes, fmt.Sprintf("The test set has %d images: all were used.", rows[0].AccuracyImages))
	}
	written, err := report.WriteFiles(*out, rep)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "bench links: %.0f s; wrote %s\n", time.Since(start).Seconds(), strings.Join(written, ", "))
	if *asJSON {
		return report.WriteJSON(stdout, rows)
	}
	return report.WriteTable(stdout, rep)
}

// machine describes this machine for the report.
func machine() string {
	cpu := ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v) + ", "
				break
			}
		}
	}
	return fmt.Sprintf("%s/%s, %s%d CPUs", runtime.GOOS, runtime.GOARCH, cpu, runtime.NumCPU())
}
