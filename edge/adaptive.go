package edge

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/splitstream/splitstream/bundle"
	"github.com/splitstream/splitstream/codec"
	"github.com/splitstream/splitstream/edge/policy"
	"github.com/splitstream/splitstream/wire"
)

// PolicyOptions say how the agent picks each frame's operating point.
type PolicyOptions struct {
	// Adaptive makes the agent choose each frame's point with edge/policy
	// among the points of Bundles (docs/ADAPTIVE.md, "In the agent");
	// false (the default, --policy fixed) sends every frame with the
	// Setup's one bundle and codec.
	Adaptive bool
	// Bundles hold the points: the learned codec of every split bundle,
	// and with a full bundle (one at most) the image sent as PNG and as
	// JPEG and WebP at JPEGQ and WebPQ. With Agent.Fallback the local
	// classifier is a point too ("local").
	Bundles []*bundle.Bundle
	// JPEGQ and WebPQ are the qualities of the image offloads (default 10,
	// 50, 90 each).
	JPEGQ, WebPQ []int
	// Calibrate is how many images of the test set each point is
	// calibrated on at start (default 20): the device's compute, the
	// bytes, the cloud's time, and the top-1 that ranks a lossy image
	// codec (edge.RankAccuracy).
	Calibrate int
	// TestSet is the folder of labelled images (labels.json, as a
	// bundle's test set: docs/BUNDLE.md) to calibrate on, such as frames
	// of the camera; empty means the first bundle's test set.
	TestSet string
	// Policy tunes the policy; its SLO is the --slo flag.
	Policy policy.Options
}

// Flags registers --policy, --slo, --calibrate and --calibrate-set on fs.
func (o *PolicyOptions) Flags(fs *flag.FlagSet) {
	fs.Func("policy", "operating point per frame: fixed (default: the --bundle and --codec given) or adaptive (docs/ADAPTIVE.md: among the points of every --bundle, comma-separated, default every bundle under "+bundle.ZooDir+")", func(v string) error {
		if o.Adaptive = v == "adaptive"; v != "adaptive" && v != "fixed" {
			return fmt.Errorf("%q: want fixed or adaptive", v)
		}
		return nil
	})
	fs.DurationVar(&o.Policy.SLO, "slo", 150*time.Millisecond, "with --policy adaptive: the latency a frame's answer should arrive within")
	fs.IntVar(&o.Calibrate, "calibrate", 20, "with --policy adaptive: test images each point is measured on at start")
	fs.StringVar(&o.TestSet, "calibrate-set", "", "with --policy adaptive: `folder` of labelled images (labels.json) to calibrate on (default: the bundles' test set)")
}

// LoadBundles loads the comma-separated bundle dirs of list (every bundle
// under bundle.ZooDir when empty) into Bundles.
func (o *PolicyOptions) LoadBundles(list string) error {
	var dirs []string
	for d := range strings.SplitSeq(list, ",") {
		if d = strings.TrimSpace(d); d != "" {
			dirs = append(dirs, d)
		}
	}
	if len(dirs) == 0 {
		if dirs = bundle.ZooDirs(bundle.ZooDir); len(dirs) == 0 {
			return fmt.Errorf("no bundles under %s: give --bundle", bundle.ZooDir)
		}
	}
	for _, d := range dirs {
		b, err := bundle.Load(d)
		if err != nil {
			return err
		}
		o.Bundles = append(o.Bundles, b)
	}
	return nil
}

// LocalPointName names the point at which the local classifier answers.
const LocalPointName = "local"

// operating is the adaptive agent's points, the encoder of each (for the
// local point, the learned encoder of its bundle), and the policy that
// chooses among them, made by the calibration. It is safe for concurrent
// use.
type operating struct {
	o      PolicyOptions
	points []Point
	encs   []*Encoder
	log    *slog.Logger

	mu       sync.Mutex
	pol      *policy.Policy // nil until calibrated
	metrics  *Metrics
	used     []int64 // frames per point
	switches int64
}

// newOperating plans the points of o.Bundles with their encoders, made
// with eo (primary serves its own bundle's points). close closes the
// encoders it made.
func newOperating(o PolicyOptions, eo EncoderOptions, primary *Encoder, log *slog.Logger) (op *operating, close func() error, err error) {
	if o.Calibrate <= 0 {
		o.Calibrate = 20
	}
	if len(o.JPEGQ) == 0 {
		o.JPEGQ = []int{10, 50, 90}
	}
	if len(o.WebPQ) == 0 {
		o.WebPQ = []int{10, 50, 90}
	}
	if eo.Codec != nil {
		return nil, nil, errors.New("adaptive: the policy chooses the codecs: give no --codec")
	}
	if log == nil {
		log = slog.Default()
	}
	op = &operating{o: o, log: log}
	var closers []func() error
	close = func() error {
		var errs []error
		for _, c := range closers {
			errs = append(errs, c())
		}
		return errors.Join(errs...)
	}
	full := false
	for _, b := range o.Bundles {
		enc := primary
		if b != primary.Bundle {
			if enc, err = NewEncoder(b, eo); err != nil {
				close()
				return nil, nil, err
			}
			closers = append(closers, enc.Close)
		}
		if b.Kind == bundle.KindSplit {
			op.add(Point{Name: LearnedPointName(b), Bundle: b}, enc)
			continue
		}
		if full {
			close()
			return nil, nil, fmt.Errorf("adaptive: two full bundles (%s): give one", b.Name)
		}
		full = true
		for _, c := range []struct {
			id codec.ID
			qs []int
		}{{codec.IDPNG, []int{0}}, {codec.IDJPEG, o.JPEGQ}, {codec.IDWebP, o.WebPQ}} {
			for _, q := range c.qs {
				cd, err := codec.NewImage(c.id, codec.ImageOptions{Quality: q})
				if err != nil {
					close()
					return nil, nil, err
				}
				e := *enc // shares nothing but the options: a full bundle has no graph
				e.Codec = cd
				op.add(Point{Name: ImagePointName(c.id, q), Bundle: b, Codec: cd}, &e)
			}
		}
	}
	if len(op.points) == 0 {
		close()
		return nil, nil, errors.New("adaptive: no operating points: give split bundles, a full bundle, or both")
	}
	return op, close, nil
}

// firstSplit is the first split bundle of bs, else the first bundle (nil
// for none).
func firstSplit(bs []*bundle.Bundle) *bundle.Bundle {
	for _, b := range bs {
		if b.Kind == bundle.KindSplit {
			return b
		}
	}
	if len(bs) > 0 {
		return bs[0]
	}
	return nil
}

// adopt makes the agent adaptive over op's points, whose bundles must all
// answer its tasks. With a local fallback that answers classification, the
// local classifier is a point (LocalPointName), fed the learned codec of
// the agent's own bundle.
func (op *operating) adopt(a *Agent) error {
	tasks := a.opts.Tasks
	if missing := tasks &^ op.tasks(); missing != 0 {
		return fmt.Errorf("adaptive: not every bundle has a head for %v", missing.List())
	}
	if a.opts.Fallback && tasks.Has(wire.Classify) && a.forLocal(a.enc) {
		op.add(Point{Name: LocalPointName, Bundle: a.enc.Bundle, Local: true}, a.enc)
	}
	op.used = make([]int64, len(op.points))
	a.op = op
	return nil
}

func (op *operating) add(p Point, enc *Encoder) {
	op.points, op.encs = append(op.points, p), append(op.encs, enc)
}

// tasks is the set of tasks every offload point's bundle answers.
func (op *operating) tasks() wire.Tasks {
	t := wire.AllTasks
	for _, p := range op.points {
		if !p.Local {
			t &= p.Bundle.Tasks()
		}
	}
	return t
}

// setMetrics makes the policy's current point a gauge in m (nil: none).
func (op *operating) setMetrics(m *Metrics) {
	op.mu.Lock()
	defer op.mu.Unlock()
	op.metrics = m
	op.showCurrent()
}

// showCurrent sets the gauge to the current point; op.mu held.
func (op *operating) showCurrent() {
	if op.metrics == nil || op.pol == nil {
		return
	}
	for i, p := range op.points {
		v := 0.0
		if i == op.pol.Current() {
			v = 1
		}
		op.metrics.point.WithLabelValues(p.Name).Set(v)
	}
}

// choose picks the next frame's point, after feeding the policy the
// transport's minimum round trip, and logs a switch.
func (op *operating) choose(c *Client) int {
	op.mu.Lock()
	defer op.mu.Unlock()
	from := op.pol.Current()
	if st, ok := c.Transport(); ok {
		op.pol.ObserveRTT(st.MinRTT)
	}
	i := op.pol.Choose()
	op.used[i]++
	if i != from {
		op.switches++
		op.log.Debug("adaptive: operating point", "from", op.points[from].Name, "to", op.points[i].Name,
			"predicted_ms", op.pol.Predict(i), "from_predicted_ms", op.pol.Predict(from), "slo", op.pol.Options().SLO)
		op.showCurrent()
	}
	return i
}

// outcome teaches the policy what a frame at point i measured: an answer
// (Observe; the local point's compute: Calibrate), or a request that got
// no answer or an error reply (FailPoint). A
// frame that failed on the edge (its image did not decode) teaches
// nothing.
func (op *operating) outcome(i int, rec Record) {
	op.mu.Lock()
	defer op.mu.Unlock()
	switch {
	case op.points[i].Local:
		// Calibrate, not Observe: a local answer says nothing of the link,
		// and must not mark a down link up.
		if rec.Status == wire.StatusOK.String() {
			op.pol.Calibrate(i, dur(rec.Latency.Total), 0)
		}
	case rec.Reply != nil && rec.Reply.Status == wire.StatusOK:
		op.pol.Observe(op.sample(i, rec))
	case rec.Reply != nil || rec.err != nil:
		op.pol.FailPoint(i)
	}
}

// sample is what an answered frame at point i measured. At the local
// point all of the frame's time is the device's.
func (op *operating) sample(i int, rec Record) policy.Sample {
	l := rec.Latency
	if op.points[i].Local {
		return policy.Sample{Point: i, Edge: dur(l.Total), Total: dur(l.Total)}
	}
	return policy.Sample{Point: i, Edge: dur(l.Preprocess + l.Encoder + l.EntropyEncode), Bytes: rec.Bytes,
		Cloud: dur(l.CloudQueue + l.Decode + l.Heads + l.Post), Total: dur(l.Total)}
}

// dur converts milliseconds to a duration.
func dur(ms float64) time.Duration { return time.Duration(ms * float64(time.Millisecond)) }

// AdaptiveStats are what the adaptive policy did.
type AdaptiveStats struct {
	Points   []Point
	Frames   []int64 // frames started at each point
	Switches int64
}

// calibrate measures every point on the first images of the bundles' test
// set, after one unmeasured run each (the graphs' and the connection's
// warm-up), and makes the policy from what it measured: the ranking
// (RankAccuracy), the device's compute and the bytes per point, and for
// the offload points the cloud's time and the network through Observe.
// Once calibrated it does nothing.
func (a *Agent) calibrate(ctx context.Context) error {
	op := a.op
	op.mu.Lock()
	defer op.mu.Unlock()
	if op.pol != nil {
		return nil
	}
	files, labels, err := op.testImages()
	if err != nil {
		return fmt.Errorf("adaptive: calibrate: %w", err)
	}
	var samples []policy.Sample
	for i := range op.points {
		correct := 0
		for k := -1; k < len(files); k++ {
			f := files[max(k, 0)]
			s, top1, err := a.measure(ctx, i, f)
			if err != nil {
				return fmt.Errorf("adaptive: calibrate %s: %w", op.points[i].Name, err)
			}
			if k < 0 {
				continue
			}
			samples = append(samples, s)
			if top1 == labels[k] {
				correct++
			}
		}
		p := &op.points[i]
		if !p.Local {
			p.Accuracy = RankAccuracy(p.Bundle, p.Codec, float64(correct)/float64(len(files)))
		}
	}
	op.pol = NewPolicy(op.points, op.o.Policy)
	for _, s := range samples {
		if op.points[s.Point].Local {
			op.pol.Calibrate(s.Point, s.Edge, 0)
		} else {
			op.pol.Observe(s)
		}
	}
	if st, ok := a.client.Transport(); ok {
		op.pol.ObserveRTT(st.MinRTT)
	}
	for i, p := range op.points {
		op.log.Info("adaptive: calibrated", "point", p.Name, "accuracy", p.Accuracy, "predicted_ms", op.pol.Predict(i), "images", len(files))
	}
	op.log.Info("adaptive: starting", "point", op.points[op.pol.Current()].Name, "slo", op.pol.Options().SLO)
	op.showCurrent()
	return nil
}

// testImages reads the first Calibrate images of the test set (TestSet,
// else the first point's bundle's) and their labels.
func (op *operating) testImages() ([][]byte, []int, error) {
	ts, err := op.points[0].Bundle.TestSet()
	if op.o.TestSet != "" {
		ts, err = bundle.LoadTestSet(op.o.TestSet)
	}
	if err != nil {
		return nil, nil, err
	}
	if _, err := ts.Lacks(op.points[0].Bundle.Manifest); err != nil { // its classes must be the bundles'
		return nil, nil, err
	}
	n := min(op.o.Calibrate, len(ts.Images))
	if n == 0 {
		return nil, nil, fmt.Errorf("the test set %s holds no images", ts.Dir)
	}
	files, labels := make([][]byte, n), make([]int, n)
	for k := range n {
		if files[k], err = os.ReadFile(filepath.Join(ts.Dir, ts.Images[k].File)); err != nil {
			return nil, nil, fmt.Errorf("test set: %w", err)
		}
		labels[k] = ts.Images[k].Label
	}
	return files, labels, nil
}

// measure does one frame's work at point i, as a frame would be done,
// and returns its sample and top-1 class (-1: none).
func (a *Agent) measure(ctx context.Context, i int, file []byte) (policy.Sample, int, error) {
	rec := a.process(ctx, Item{Name: "calibration", Data: file}, i)
	if rec.Status != wire.StatusOK.String() {
		return policy.Sample{}, -1, fmt.Errorf("%s: %s", rec.Status, rec.Error)
	}
	top1 := -1
	if rec.Results != nil && len(rec.Results.Classify) > 0 {
		top1 = rec.Results.Classify[0].Index
	}
	return a.op.sample(i, rec), top1, nil
}

// Adaptive returns what the adaptive policy did, and false for a fixed
// policy.
func (a *Agent) Adaptive() (AdaptiveStats, bool) {
	if a.op == nil {
		return AdaptiveStats{}, false
	}
	op := a.op
	op.mu.Lock()
	defer op.mu.Unlock()
	return AdaptiveStats{Points: slices.Clone(op.points), Frames: slices.Clone(op.used), Switches: op.switches}, true
}
