package sweep

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/splitstream/splitstream/bench/link"
	"github.com/splitstream/splitstream/bench/netns"
	"github.com/splitstream/splitstream/bench/report"
	"github.com/splitstream/splitstream/bundle"
	"github.com/splitstream/splitstream/cloud"
	"github.com/splitstream/splitstream/edge"
	"github.com/splitstream/splitstream/models"
	"github.com/splitstream/splitstream/pipeline"
	"github.com/splitstream/splitstream/wire"
)

// Options configure a sweep. The zero value of a field gives its default.
type Options struct {
	Strategies []Strategy
	Links      []Link
	// Images is how many test images (in the seed's order) measure
	// accuracy and bytes per image. Default 100.
	Images int
	// Timed is how many of those images are timed per strategy and link,
	// one request at a time. Default 10; at most Images.
	Timed int
	// Seed orders the test images and seeds the links' loss and jitter.
	Seed uint64
	// Engine is the inference engine, "native" (default) or "ort".
	Engine string
	// EdgeThreads and CloudThreads are the threads per graph run on each
	// side; 0 means one per CPU (native) or the engine's default.
	EdgeThreads, CloudThreads int
	// Slowdown multiplies the measured edge compute (0 or 1: none).
	Slowdown float64
	// NetNS runs each link in network namespaces (root only) instead of
	// the user-space relay.
	NetNS bool
	// Open opens graph files; nil means models.OpenFile. Tests supply
	// Go-computed graphs.
	Open func(path string) (models.Engine, error)
	// Progress receives one line per step; nil means none.
	Progress io.Writer
	// Logger logs the runtime's warnings; nil discards them.
	Logger *slog.Logger
}

func (o *Options) defaults() error {
	if o.Images <= 0 {
		o.Images = 100
	}
	if o.Timed <= 0 {
		o.Timed = 10
	}
	if o.Engine == "" {
		o.Engine = models.Native
	}
	if o.Slowdown <= 0 {
		o.Slowdown = 1
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if len(o.Strategies) == 0 {
		return errors.New("sweep: no strategies")
	}
	if len(o.Links) == 0 {
		return errors.New("sweep: no links")
	}
	return nil
}

// testImage is one test image, loaded.
type testImage struct {
	index int // in the test set
	name  string
	data  []byte
}

// accuracy is what the accuracy pass found for one strategy.
type accuracy struct {
	top1, map50, miou float64
	images            int
	bytesPerImage     float64
	pred              map[int]int // test index -> top-1 class
}

// runner holds what a sweep shares across strategies and links.
type runner struct {
	o        Options
	ts       *bundle.TestSet
	images   []testImage
	models   []*cloud.Model
	encoders map[*bundle.Bundle]*edge.Encoder
	local    *cloud.Model // the full model on the edge, for edge-only
	srvTLS   *tls.Config
	cliTLS   *tls.Config
	start    time.Time
	timed    time.Time // when the timed pass began, for its time-left estimate
}

// Run runs the sweep and returns one row per strategy and link, links
// outermost, in the order given.
func Run(ctx context.Context, o Options) ([]report.Row, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	if o.NetNS {
		if err := netns.Available(); err != nil {
			return nil, fmt.Errorf("sweep: --netns: %w", err)
		}
	}
	r := &runner{o: o, encoders: map[*bundle.Bundle]*edge.Encoder{}, start: time.Now()}
	defer r.close()
	if err := r.load(); err != nil {
		return nil, err
	}
	acc := make([]accuracy, len(o.Strategies))
	addr, stop, err := r.serve(ctx, nil)
	if err != nil {
		return nil, err
	}
	for i, s := range o.Strategies {
		a, err := r.accuracy(ctx, s, addr)
		if err != nil {
			stop()
			return nil, fmt.Errorf("%s: accuracy: %w", s.Name, err)
		}
		acc[i] = a
		r.progress("accuracy %2d/%d %-22s top-1 %.4f  mAP %.4f  mIoU %.4f  %8.1f B/image (%d images)",
			i+1, len(o.Strategies), s.Name, a.top1, a.map50, a.miou, a.bytesPerImage, a.images)
	}
	if o.NetNS {
		stop() // each link gets its own server in its namespace
	}
	timed := r.images[:min(o.Timed, len(r.images))]
	// Edge-only does not touch the link: time it once.
	var edgeSamples []report.Sample
	var edgeMismatch int
	for i, s := range o.Strategies {
		if s.Kind == KindEdge {
			if edgeSamples, edgeMismatch, err = r.timeLocal(ctx, timed, acc[i]); err != nil {
				stop()
				return nil, fmt.Errorf("%s: %w", s.Name, err)
			}
		}
	}
	var rows []report.Row
	r.timed = time.Now()
	points := len(o.Links) * len(o.Strategies)
	done := 0
	for _, l := range o.Links {
		results := make([]linkResult, len(o.Strategies))
		run := func(addr string) error {
			return r.timeLink(ctx, l, addr, timed, acc, results, &done, points)
		}
		if o.NetNS {
			err = r.inNamespaces(ctx, l, run)
		} else {
			var relay *link.Relay
			relay, err = link.NewRelay(ctx, "127.0.0.1:0", addr, l.Config, o.Seed, link.WithLogger(o.Logger))
			if err == nil {
				err = run(relay.Addr().String())
				relay.Close()
			}
		}
		if err != nil {
			stop()
			return nil, fmt.Errorf("link %s: %w", l.Name, err)
		}
		for i, s := range o.Strategies {
			row := r.row(s, l, acc[i])
			samples, errs, mism := results[i].samples, results[i].errors, results[i].mismatches
			if s.Kind == KindEdge {
				samples, errs, mism = edgeSamples, 0, edgeMismatch
			}
			row.Errors, row.Mismatches = errs, mism
			up, down, rtt := l.Config.Up.RateBps, l.Config.Down.RateBps, l.Config.RTT()
			if s.Kind == KindEdge {
				up, down, rtt = 0, 0, 0 // nothing crosses the link
			}
			row.Fill(samples, up, down, rtt, o.Slowdown)
			rows = append(rows, row)
		}
	}
	if !o.NetNS {
		stop()
	}
	return rows, nil
}

func (r *runner) row(s Strategy, l Link, a accuracy) report.Row {
	return report.Row{
		Strategy: s.Name, Kind: s.Kind, Bundle: s.Bundle.Name, Link: l.Name,
		RateMbps: l.Config.Up.RateBps / 1e6, RTTms: float64(l.Config.RTT().Microseconds()) / 1000, Loss: l.Config.Up.Loss,
		Top1: a.top1, MAP50: a.map50, MIoU: a.miou, AccuracyImages: a.images,
		BytesPerImage: a.bytesPerImage, HeaderBytes: headerBytes(s),
	}
}

func headerBytes(s Strategy) int {
	if s.Kind == KindEdge {
		return 0
	}
	return wire.HeaderSize
}

func (r *runner) progress(format string, args ...any) {
	fmt.Fprintf(r.o.Progress, "[%6.1fs] %s\n", time.Since(r.start).Seconds(), fmt.Sprintf(format, args...))
}

// load opens the test set, the images, the cloud models and the edge side.
func (r *runner) load() error {
	o := r.o
	for _, s := range o.Strategies {
		ts, err := s.Bundle.TestSet()
		if err != nil {
			return err
		}
		if r.ts == nil {
			r.ts = ts
		} else if abs(ts.Dir) != abs(r.ts.Dir) {
			return fmt.Errorf("bundle %s uses test set %s, another bundle %s: the strategies must share one", s.Bundle.Name, ts.Dir, r.ts.Dir)
		}
	}
	order := rand.New(rand.NewPCG(o.Seed, 0x5eed)).Perm(len(r.ts.Images))
	for _, i := range order[:min(o.Images, len(order))] {
		name := r.ts.Images[i].File
		data, err := os.ReadFile(filepath.Join(r.ts.Dir, name))
		if err != nil {
			return fmt.Errorf("test set: %w", err)
		}
		r.images = append(r.images, testImage{index: i, name: name, data: data})
	}
	edgeOpts := models.Options{Threads: o.EdgeThreads}
	cloudOpts := models.Options{Threads: o.CloudThreads}
	seen := map[*bundle.Bundle]bool{}
	for _, s := range o.Strategies {
		b := s.Bundle
		if s.Kind == KindEdge {
			m, err := cloud.LoadModel(b, cloud.ModelOptions{Engine: o.Engine, EngineOptions: edgeOpts, Open: o.Open, Batch: cloud.BatchOptions{MaxBatch: 1, Parallel: 1}})
			if err != nil {
				return fmt.Errorf("edge-only: %w", err)
			}
			r.local = m
			continue
		}
		if seen[b] {
			continue
		}
		seen[b] = true
		m, err := cloud.LoadModel(b, cloud.ModelOptions{Engine: o.Engine, EngineOptions: cloudOpts, Open: o.Open, Batch: cloud.BatchOptions{MaxBatch: 1}})
		if err != nil {
			return err
		}
		r.models = append(r.models, m)
		enc, err := edge.NewEncoder(b, edge.EncoderOptions{Engine: o.Engine, EngineOptions: edgeOpts, Open: o.Open, Codec: s.Codec})
		if err != nil {
			return err
		}
		r.encoders[b] = enc
	}
	var err error
	r.srvTLS, r.cliTLS, err = pipeline.TLS()
	return err
}

func abs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		return filepath.Clean(p)
	}
	return a
}

func (r *runner) close() {
	for _, m := range r.models {
		m.Close()
	}
	if r.local != nil {
		r.local.Close()
	}
	for _, e := range r.encoders {
		e.Close()
	}
}

// encoder returns the edge encoder of a strategy: the bundle's graph with
// the strategy's codec.
func (r *runner) encoder(s Strategy) (*edge.Encoder, error) {
	base := r.encoders[s.Bundle]
	if base == nil {
		return nil, fmt.Errorf("no encoder for bundle %s", s.Bundle.Name)
	}
	e := *base // shares the graph; only the codec differs
	if s.Codec != nil {
		e.Codec = s.Codec
	} else if s.Kind == KindLearned {
		l, err := s.Bundle.Codec()
		if err != nil {
			return nil, err
		}
		e.Codec = l
	}
	return &e, nil
}

// serve starts a cloud server for every loaded model on pc (a new loopback
// socket when nil) and returns its address and a function that stops it
// (and closes pc).
func (r *runner) serve(ctx context.Context, pc net.PacketConn) (string, func(), error) {
	if pc == nil {
		var err error
		if pc, err = net.ListenPacket("udp", "127.0.0.1:0"); err != nil {
			return "", nil, err
		}
	}
	stop, err := pipeline.Serve(ctx, r.models, pc, r.srvTLS, cloud.Options{Logger: r.o.Logger})
	if err != nil {
		return "", nil, err
	}
	return pc.LocalAddr().String(), stop, nil
}

func (r *runner) client(addr string) (*edge.Client, error) {
	return edge.NewClient(addr, edge.ClientOptions{TLS: r.cliTLS, Logger: r.o.Logger, MinBackoff: 50 * time.Millisecond, MaxBackoff: time.Second, DialTimeout: 30 * time.Second})
}

func (r *runner) items(ctx context.Context, imgs []testImage) <-chan edge.Item {
	ch := make(chan edge.Item)
	go func() {
		defer close(ch)
		for k, im := range imgs {
			select {
			case ch <- edge.Item{Index: k, Name: im.name, Data: im.data}:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch
}

// accuracy sends the accuracy set through the real path to addr (no link
// emulation) and scores the replies.
func (r *runner) accuracy(ctx context.Context, s Strategy, addr string) (accuracy, error) {
	sc := newScorer(r.ts, s.Bundle)
	if s.Kind == KindEdge {
		for _, im := range r.images {
			out, _, err := r.runLocal(ctx, im)
			if err != nil {
				return accuracy{}, fmt.Errorf("%s: %w", im.name, err)
			}
			if err := sc.Add(im.index, out.Results, out.Detections); err != nil {
				return accuracy{}, err
			}
		}
		return sc.result(0), nil
	}
	enc, err := r.encoder(s)
	if err != nil {
		return accuracy{}, err
	}
	cl, err := r.client(addr)
	if err != nil {
		return accuracy{}, err
	}
	defer cl.Close()
	agent, err := edge.NewAgent(enc, cl, edge.AgentOptions{Concurrency: 2, Timeout: 5 * time.Minute})
	if err != nil {
		return accuracy{}, err
	}
	recs := make([]*edge.Record, len(r.images))
	agent.Run(ctx, r.items(ctx, r.images), func(rec edge.Record) { recs[rec.Index] = &rec })
	payload := 0
	for k, rec := range recs {
		if rec == nil {
			return accuracy{}, fmt.Errorf("%s: no record: %w", r.images[k].name, ctx.Err())
		}
		if rec.Status != "ok" {
			return accuracy{}, fmt.Errorf("%s: %s: %s", rec.Image, rec.Status, rec.Error)
		}
		payload += rec.Bytes - wire.HeaderSize
		if err := sc.Add(r.images[k].index, rec.Reply.Results, nil); err != nil {
			return accuracy{}, err
		}
	}
	return sc.result(payload), nil
}

// runLocal runs the full model on the edge for one image: decode,
// pixels, model, post-processing.
func (r *runner) runLocal(ctx context.Context, im testImage) (*cloud.Output, time.Duration, error) {
	start := time.Now()
	img, err := edge.DecodeImage(im.data)
	if err != nil {
		return nil, 0, err
	}
	b := r.local.Bundle
	px := b.Input.Pixels(nil, img)
	out, err := r.local.Run(ctx, px, b.Tasks())
	return out, time.Since(start), err
}

// timeLocal times edge-only on the timed images, one at a time, after one
// untimed run.
func (r *runner) timeLocal(ctx context.Context, imgs []testImage, a accuracy) ([]report.Sample, int, error) {
	if _, _, err := r.runLocal(ctx, imgs[0]); err != nil {
		return nil, 0, err
	}
	var out []report.Sample
	mism := 0
	for _, im := range imgs {
		res, took, err := r.runLocal(ctx, im)
		if err != nil {
			return nil, 0, fmt.Errorf("%s: %w", im.name, err)
		}
		ms := float64(took.Nanoseconds()) / 1e6
		out = append(out, report.Sample{Total: ms, Edge: ms})
		if c, ok := top1(res.Results); ok && c != a.pred[im.index] {
			mism++
		}
	}
	r.progress("timed   edge-only (local, %d images, the same for every link)", len(out))
	return out, mism, nil
}

// linkResult is what the timed pass found for one strategy on one link.
type linkResult struct {
	samples    []report.Sample
	errors     int
	mismatches int
}

// timeLink times every strategy but edge-only through the link at addr,
// one request at a time, each after one untimed warm-up request, over one
// QUIC connection.
func (r *runner) timeLink(ctx context.Context, l Link, addr string, imgs []testImage, acc []accuracy, out []linkResult, done *int, points int) error {
	cl, err := r.client(addr)
	if err != nil {
		return err
	}
	defer cl.Close()
	for i, s := range r.o.Strategies {
		*done++
		if s.Kind == KindEdge {
			continue
		}
		enc, err := r.encoder(s)
		if err != nil {
			return err
		}
		agent, err := edge.NewAgent(enc, cl, edge.AgentOptions{Concurrency: 1, Timeout: 5 * time.Minute})
		if err != nil {
			return err
		}
		if w := agent.Process(ctx, edge.Item{Name: imgs[0].name, Data: imgs[0].data}); w.Status != "ok" {
			return fmt.Errorf("%s: warm-up: %s: %s", s.Name, w.Status, w.Error)
		}
		res := &out[i]
		for k, im := range imgs {
			if err := ctx.Err(); err != nil {
				return err
			}
			rec := agent.Process(ctx, edge.Item{Index: k, Name: im.name, Data: im.data})
			if rec.Status != "ok" {
				res.errors++
				r.o.Logger.Warn("timed request failed", "strategy", s.Name, "image", im.name, "status", rec.Status, "err", rec.Error)
				continue
			}
			L := rec.Latency
			res.samples = append(res.samples, report.Sample{
				Total: L.Total, Edge: L.Preprocess + L.Encoder + L.EntropyEncode, Network: L.Network,
				Cloud:    L.CloudQueue + L.Decode + L.Heads + L.Post,
				ReqBytes: rec.Bytes, ReplyBytes: replySize(rec.Reply),
			})
			if c, ok := top1(rec.Reply.Results); ok && c != acc[i].pred[im.index] {
				res.mismatches++
			}
		}
		var tot []float64
		for _, smp := range res.samples {
			tot = append(tot, smp.Total)
		}
		elapsed := time.Since(r.timed)
		r.progress("timed %3d/%d %-22s %-40s p50 %8.1f ms  p95 %8.1f ms  errors %d  (about %s left)",
			*done, points, s.Name, l.Name, report.Percentile(tot, 50), report.Percentile(tot, 95), res.errors,
			eta(elapsed, *done, points))
	}
	return nil
}

// replySize is the size of a reply frame as the cloud sent it.
func replySize(r *wire.Reply) int {
	b, err := wire.AppendReply(nil, r)
	if err != nil {
		return 0
	}
	return len(b)
}

// eta estimates the time left from the pace so far: elapsed for done of
// total steps.
func eta(elapsed time.Duration, done, total int) string {
	if done == 0 {
		return "?"
	}
	left := time.Duration(float64(elapsed) / float64(done) * float64(total-done))
	return left.Round(time.Second).String()
}

// inNamespaces sets up the link as two network namespaces, serves the cloud
// in one, and runs fn (given the relay's address) on a thread of the other,
// so that the edge's QUIC socket, created on first use, lives there.
func (r *runner) inNamespaces(ctx context.Context, l Link, fn func(addr string) error) error {
	pair, err := netns.New(ctx, l.Config)
	if err != nil {
		return err
	}
	defer pair.Close()
	pc, err := pair.Cloud.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return err
	}
	addr, stop, err := r.serve(ctx, pc)
	if err != nil {
		pc.Close()
		return err
	}
	defer stop()
	relay, err := pair.Relay(ctx, addr, r.o.Seed)
	if err != nil {
		return err
	}
	defer relay.Close()
	return pair.Edge.Do(func() error { return fn(relay.Addr().String()) })
}
