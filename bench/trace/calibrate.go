package trace

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/splitstream/splitstream/bench/sweep"
	"github.com/splitstream/splitstream/bundle"
	"github.com/splitstream/splitstream/cloud"
	"github.com/splitstream/splitstream/edge"
	"github.com/splitstream/splitstream/models"
	"github.com/splitstream/splitstream/pipeline"
	"github.com/splitstream/splitstream/wire"
)

// Point is one operating point: a fixed strategy of bench/sweep with the
// accuracy the policy ranks it by.
type Point struct {
	sweep.Strategy
	// Accuracy is the top-1 the policy ranks the point by
	// (edge.RankAccuracy): the bundle manifest's for the learned codec, for
	// edge-only and for PNG (lossless: the full bundle's); for a lossy image
	// codec, which no manifest records, the top-1 measured in the
	// calibration.
	Accuracy float64
}

// Local reports whether the point runs on the device without the link.
func (p Point) Local() bool { return p.Kind == sweep.KindEdge }

// Calibrated is one frame's work at one point, as measured once on this
// machine before the run.
type Calibrated struct {
	// Edge is the measured device compute: decode, preprocessing, encoder
	// and coding (edge-only: the whole model), unscaled.
	Edge time.Duration
	// Header and Payload are the request the edge sent (offload points).
	Header  wire.Header
	Payload []byte
	// Reply is the cloud's reply to it and Cloud the cloud's own stages
	// as the reply reports them.
	Reply *wire.Reply
	Cloud time.Duration
	// Top1 is the answer's top-1 class (OK: there was one).
	Top1 int
	OK   bool
}

// Calibration is the measured work of every point on every image of the
// cycle.
type Calibration struct {
	Points []Point
	// Images are the test-set indices of the cycle, in the seed's order;
	// Labels their correct classes.
	Images []int
	Labels []int
	// Work[p][i] is point p's work on cycle image i.
	Work [][]Calibrated
	// Compute[p] is point p's compute as the run replays it: the median
	// over the cycle of Work[p][i].Edge. The graphs' input has one size,
	// so what varies between images here is mostly the machine's load,
	// which a median over hundreds of images leaves out.
	Compute []time.Duration
	// Took is how long the calibration took.
	Took time.Duration
}

// CalibrateOptions configure Calibrate.
type CalibrateOptions struct {
	Engine string // models.Native (default) or models.ORT
	// Images is the length of the cycle: the first Images test images in
	// the seed's order (all when 0 or more than the test set holds).
	Images int
	Seed   uint64
	// Open opens graph files; nil means models.OpenFile (tests supply
	// Go-computed graphs).
	Open func(path string) (models.Engine, error)
	// Repeats is how often each frame's compute is timed; the fastest
	// counts (default 3), so that a preemption on this shared machine is
	// not replayed, let alone multiplied by the slowdown.
	Repeats int
	// Progress reports each point's figures; nil means none.
	Progress func(format string, args ...any)
}

// tasksAsked are the tasks the camera asks for: its answer is the class.
var tasksAsked = wire.Tasks(0).With(wire.Classify)

// Calibrate does each strategy's work on each cycle image once, for real:
// the edge's compute on this machine's engine (timed), and for the
// offload points the request to a cloud server on loopback (no link
// emulation), which answers with its real heads and reports their time.
// All strategies must share one test set.
func Calibrate(ctx context.Context, strategies []sweep.Strategy, o CalibrateOptions) (*Calibration, error) {
	start := time.Now()
	if o.Engine == "" {
		o.Engine = models.Native
	}
	if o.Progress == nil {
		o.Progress = func(string, ...any) {}
	}
	if o.Repeats <= 0 {
		o.Repeats = 3
	}
	if len(strategies) == 0 {
		return nil, fmt.Errorf("trace: no strategies")
	}
	ts, err := strategies[0].Bundle.TestSet()
	if err != nil {
		return nil, err
	}
	for _, s := range strategies[1:] {
		t, err := s.Bundle.TestSet()
		if err != nil {
			return nil, err
		}
		if abs(t.Dir) != abs(ts.Dir) {
			return nil, fmt.Errorf("bundle %s uses test set %s, bundle %s %s: the strategies must share one", s.Bundle.Name, t.Dir, strategies[0].Bundle.Name, ts.Dir)
		}
	}
	c := &Calibration{}
	order := rand.New(rand.NewPCG(o.Seed, 0x5eed)).Perm(len(ts.Images))
	if o.Images <= 0 || o.Images > len(order) {
		o.Images = len(order)
	}
	files := make([][]byte, o.Images)
	for k, i := range order[:o.Images] {
		if files[k], err = os.ReadFile(filepath.Join(ts.Dir, ts.Images[i].File)); err != nil {
			return nil, fmt.Errorf("test set: %w", err)
		}
		c.Images = append(c.Images, i)
		c.Labels = append(c.Labels, ts.Images[i].Label)
	}

	cl, closeAll, err := startCloud(ctx, strategies, o)
	if err != nil {
		return nil, err
	}
	defer closeAll()
	for _, s := range strategies {
		work, err := cl.measure(ctx, s, files)
		if err != nil {
			return nil, fmt.Errorf("calibrate %s: %w", s.Name, err)
		}
		correct := 0
		var edges []float64
		for i, w := range work {
			if w.OK && w.Top1 == c.Labels[i] {
				correct++
			}
			edges = append(edges, ms(w.Edge))
		}
		top1 := share(correct, len(work))
		p := Point{Strategy: s, Accuracy: edge.RankAccuracy(s.Bundle, s.Codec, top1)}
		c.Points = append(c.Points, p)
		c.Work = append(c.Work, work)
		c.Compute = append(c.Compute, c.medianEdge(len(c.Work)-1))
		slices.Sort(edges)
		o.Progress("calibrated %-24s top-1 %.3f (ranked as %.3f), edge p50 %.2f ms, %.0f B/frame",
			s.Name, top1, p.Accuracy, edges[len(edges)/2], c.meanBytes(len(c.Points)-1))
	}
	c.Took = time.Since(start)
	return c, nil
}

// meanBytes is the mean request size of point p over the cycle (0 for a
// local point).
func (c *Calibration) meanBytes(p int) float64 {
	n := 0
	for _, w := range c.Work[p] {
		if w.Payload != nil {
			n += wire.HeaderSize + len(w.Payload)
		}
	}
	return float64(n) / float64(len(c.Work[p]))
}

// medianEdge is the median measured compute of point p over the cycle.
func (c *Calibration) medianEdge(p int) time.Duration {
	d := make([]time.Duration, len(c.Work[p]))
	for i, w := range c.Work[p] {
		d[i] = w.Edge
	}
	slices.Sort(d)
	return d[len(d)/2]
}

func abs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		return filepath.Clean(p)
	}
	return a
}

// calCloud is what the calibration runs: the cloud's models on a loopback
// server, the edge's encoders, and the full model on the device for
// edge-only.
type calCloud struct {
	o        CalibrateOptions
	client   *edge.Client
	local    *cloud.Model
	encoders map[*bundle.Bundle]*edge.Encoder
}

func startCloud(ctx context.Context, strategies []sweep.Strategy, o CalibrateOptions) (*calCloud, func(), error) {
	c := &calCloud{o: o, encoders: map[*bundle.Bundle]*edge.Encoder{}}
	var ms []*cloud.Model
	var srv *pipeline.Cloud
	closeAll := func() {
		if c.client != nil {
			c.client.Close()
		}
		if srv != nil {
			srv.Stop()
		}
		for _, m := range ms {
			m.Close()
		}
		if c.local != nil {
			c.local.Close()
		}
		for _, e := range c.encoders {
			e.Close()
		}
	}
	fail := func(err error) (*calCloud, func(), error) { closeAll(); return nil, nil, err }
	for _, s := range strategies {
		b := s.Bundle
		if s.Kind == sweep.KindEdge {
			m, err := cloud.LoadModel(b, cloud.ModelOptions{Engine: o.Engine, Open: o.Open, Batch: cloud.BatchOptions{MaxBatch: 1, Parallel: 1}})
			if err != nil {
				return fail(fmt.Errorf("edge-only: %w", err))
			}
			c.local = m
			continue
		}
		if c.encoders[b] != nil {
			continue
		}
		m, err := cloud.LoadModel(b, cloud.ModelOptions{Engine: o.Engine, Open: o.Open, Batch: cloud.BatchOptions{MaxBatch: 1}})
		if err != nil {
			return fail(err)
		}
		ms = append(ms, m)
		enc, err := edge.NewEncoder(b, edge.EncoderOptions{Engine: o.Engine, Open: o.Open})
		if err != nil {
			return fail(err)
		}
		c.encoders[b] = enc
	}
	if len(ms) > 0 {
		var err error
		if srv, err = pipeline.Loopback(ctx, ms, cloud.Options{Workers: 1, Logger: quiet}); err != nil {
			return fail(err)
		}
		if c.client, err = edge.NewClient(srv.Addr, edge.ClientOptions{TLS: srv.ClientTLS, Logger: quiet}); err != nil {
			return fail(err)
		}
	}
	return c, closeAll, nil
}

// measure does strategy s's work on each file, after one untimed run.
func (c *calCloud) measure(ctx context.Context, s sweep.Strategy, files [][]byte) ([]Calibrated, error) {
	one := c.offload
	if s.Kind == sweep.KindEdge {
		one = c.onDevice
	}
	if _, err := one(ctx, s, files[0]); err != nil { // warm-up
		return nil, err
	}
	out := make([]Calibrated, len(files))
	for i, f := range files {
		w, err := one(ctx, s, f)
		if err != nil {
			return nil, fmt.Errorf("image %d: %w", i, err)
		}
		out[i] = w
	}
	return out, nil
}

// onDevice runs the full model for one image as edge-only does: decode,
// pixels, model, post-processing, all timed.
func (c *calCloud) onDevice(ctx context.Context, _ sweep.Strategy, file []byte) (Calibrated, error) {
	var w Calibrated
	took, err := c.fastest(func() error {
		img, err := edge.DecodeImage(file)
		if err != nil {
			return err
		}
		b := c.local.Bundle
		out, err := c.local.Run(ctx, b.Input.Pixels(nil, img), tasksAsked)
		if err != nil {
			return err
		}
		w.Top1, w.OK = top1(out.Results)
		return nil
	})
	w.Edge = took
	return w, err
}

// fastest runs fn Repeats times and returns the shortest time it took.
func (c *calCloud) fastest(fn func() error) (time.Duration, error) {
	d := make([]time.Duration, c.o.Repeats)
	for i := range d {
		start := time.Now()
		if err := fn(); err != nil {
			return 0, err
		}
		d[i] = time.Since(start)
	}
	return slices.Min(d), nil
}

// offload encodes one image as the edge does (timed as a whole: decode,
// preprocessing, encoder, coding) and sends it to the cloud on loopback.
func (c *calCloud) offload(ctx context.Context, s sweep.Strategy, file []byte) (Calibrated, error) {
	enc := *c.encoders[s.Bundle] // shares the graph; only the codec differs
	if s.Codec != nil {
		enc.Codec = s.Codec
	}
	var payload []byte
	took, err := c.fastest(func() error {
		var err error
		payload, _, err = enc.Encode(ctx, file)
		return err
	})
	if err != nil {
		return Calibrated{}, err
	}
	sh := s.Bundle.Shape()
	h := wire.Header{Codec: uint8(enc.Codec.ID()), Tasks: tasksAsked, Channels: uint16(sh.C), Height: uint16(sh.H),
		Width: uint16(sh.W), Bundle: s.Bundle.ID, PayloadLen: uint32(len(payload)), PayloadCRC: wire.Checksum(payload)}
	reply, err := c.client.Do(ctx, h, payload)
	if err != nil {
		return Calibrated{}, err
	}
	if reply.Status != wire.StatusOK {
		return Calibrated{}, fmt.Errorf("cloud: %s: %s", reply.Status, reply.Message)
	}
	w := Calibrated{Edge: took, Header: h, Payload: payload, Reply: reply, Cloud: CloudTime(reply)}
	w.Top1, w.OK = top1(reply.Results)
	return w, nil
}

// CloudTime is the cloud's own time in a reply, as the edge agent counts
// it: queue, decode, trunk and post-processing, plus the slowest head
// (heads run concurrently).
func CloudTime(r *wire.Reply) time.Duration {
	var sum, heads time.Duration
	for _, t := range r.Timings {
		if _, ok := t.Stage.Head(); ok {
			heads = max(heads, t.Duration)
		} else {
			sum += t.Duration
		}
	}
	return sum + heads
}

func top1(results []wire.Result) (int, bool) {
	for _, r := range results {
		if r.Task == wire.Classify && len(r.Classes) > 0 {
			return int(r.Classes[0].Label), true
		}
	}
	return 0, false
}
