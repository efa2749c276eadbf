package trace

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/splitstream/splitstream/bench/link"
	"github.com/splitstream/splitstream/bench/sweep"
	"github.com/splitstream/splitstream/edge"
	"github.com/splitstream/splitstream/edge/policy"
	"github.com/splitstream/splitstream/models"
	"github.com/splitstream/splitstream/pipeline"
)

// AdaptiveName is the strategy name of the adaptive policy.
const AdaptiveName = "adaptive"

// Options configure a run. The zero value of a field gives its default.
type Options struct {
	// Strategies are the fixed strategies; adaptive chooses among all of
	// them.
	Strategies []sweep.Strategy
	// Up and Down are the link's traces; RTT its base round trip (half
	// each way); Queue the drop-tail queue of each direction.
	Up, Down *link.Trace
	RTT      time.Duration
	Queue    link.Queue
	// SLO is a frame's deadline; FPS the camera's frame rate; Duration
	// how long frames arrive.
	SLO      time.Duration
	FPS      float64
	Duration time.Duration
	// Timeout bounds a request after the frame's compute (default 1 s).
	Timeout time.Duration
	// Slowdown multiplies the measured edge compute (default 1).
	Slowdown float64
	// Policy tunes adaptive (its SLO is set from SLO).
	Policy policy.Options
	// Images, Seed, Engine and Open are as in CalibrateOptions.
	Images int
	Seed   uint64
	Engine string
	Open   func(path string) (models.Engine, error)
	// Progress receives one line per step; nil means none.
	Progress io.Writer
}

func (o *Options) defaults() error {
	if o.Timeout <= 0 {
		o.Timeout = time.Second
	}
	if o.Slowdown <= 0 {
		o.Slowdown = 1
	}
	if o.Engine == "" {
		o.Engine = models.Native
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	switch {
	case len(o.Strategies) == 0:
		return errors.New("trace: no strategies")
	case o.Up == nil || o.Down == nil:
		return errors.New("trace: need an up and a down trace")
	case o.SLO <= 0 || !(o.FPS > 0) || o.Duration <= 0 || o.RTT < 0:
		return errors.New("trace: SLO, fps and duration must be above 0, RTT not below")
	}
	o.Policy.SLO = o.SLO
	return nil
}

// Run is one run's results.
type Run struct {
	Options Options
	// Trace names the trace pair.
	Trace string
	// Calibration is the measured work that the run replayed.
	Calibration *Calibration
	// Strategies names the rows and outcomes: the fixed strategies in the
	// order given, then adaptive.
	Strategies []string
	Rows       []Row
	Outcomes   [][]Outcome
	// Policy is adaptive's options as used.
	Policy policy.Options
	// Links are the relays' counters, per strategy (zero for edge-only).
	Links []link.Stats
	// ComputeLate and CloudLate are how late the replayed waits of the
	// devices and of the cloud ended, over all strategies.
	ComputeLate, CloudLate *Lateness
	Started                time.Time
	Took                   time.Duration
}

// TraceName names a pair of traces: their common stem when they are
// NAME.up and NAME.down, else both names.
func TraceName(up, down *link.Trace) string {
	u, d := up.Name(), down.Name()
	if su, ok := strings.CutSuffix(u, ".up"); ok {
		if sd, ok := strings.CutSuffix(d, ".down"); ok && su == sd {
			return su
		}
	}
	return u + "+" + d
}

// Bench calibrates the strategies, then runs every fixed strategy and
// adaptive at once, each over its own relay replaying the traces from its
// own start, with the compute replayed (see the package doc).
func Bench(ctx context.Context, o Options) (*Run, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	frames, err := Schedule(o.FPS, o.Duration, max(o.Images, 1))
	if err != nil {
		return nil, err
	}
	if o.Images <= 0 { // the cycle: as many images as frames, at most the test set
		o.Images = len(frames)
	}
	begin := time.Now()
	progress := func(format string, args ...any) {
		fmt.Fprintf(o.Progress, "[%6.1fs] %s\n", time.Since(begin).Seconds(), fmt.Sprintf(format, args...))
	}
	cal, err := Calibrate(ctx, o.Strategies, CalibrateOptions{Engine: o.Engine, Images: o.Images, Seed: o.Seed, Open: o.Open, Progress: progress})
	if err != nil {
		return nil, err
	}
	if frames, err = Schedule(o.FPS, o.Duration, len(cal.Images)); err != nil {
		return nil, err
	}
	r := &Run{Options: o, Trace: TraceName(o.Up, o.Down), Calibration: cal, ComputeLate: &Lateness{}}
	srvTLS, cliTLS, err := pipeline.TLS()
	if err != nil {
		return nil, err
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	rc := newReplayCloud(cal)
	r.CloudLate = &rc.late
	stop, err := rc.serve(ctx, pc, srvTLS)
	if err != nil {
		return nil, err
	}
	defer stop()

	n := len(cal.Points) + 1
	r.Outcomes, r.Links = make([][]Outcome, n), make([]link.Stats, n)
	names := make([]string, len(cal.Points))
	for i, p := range cal.Points {
		names[i] = p.Name
	}
	r.Strategies = append(names, AdaptiveName)
	choosers := make([]Chooser, n)
	for i := range cal.Points {
		choosers[i] = Fixed(i)
	}
	choosers[n-1] = Adaptive{r.newPolicy()}
	offloads := func(i int) bool { return i == n-1 || !cal.Points[i].Local() }
	cfg := link.TraceLink(o.Up, o.Down, o.RTT/2, o.Queue)
	progress("running %d strategies at once for %v: %d frames each at %g fps, trace %s, SLO %v",
		n, o.Duration, len(frames), o.FPS, r.Trace, o.SLO)
	devs, starts := make([]*replayDevice, n), make([]func() time.Time, n)
	relays := make([]*link.Relay, n)
	defer func() {
		for i, rl := range relays {
			if rl != nil {
				devs[i].client.Close()
				rl.Close()
			}
		}
	}()
	for i := range n {
		devs[i] = &replayDevice{cal: cal, slowdown: o.Slowdown, late: r.ComputeLate}
		starts[i] = time.Now
		if !offloads(i) {
			continue
		}
		relay, err := link.NewRelay(ctx, "127.0.0.1:0", pc.LocalAddr().String(), cfg, o.Seed+uint64(i), link.WithLogger(quiet))
		if err != nil {
			return nil, err
		}
		relays[i] = relay
		if devs[i].client, err = edge.NewClient(relay.Addr().String(), edge.ClientOptions{TLS: cliTLS, Logger: quiet,
			MinBackoff: 50 * time.Millisecond, MaxBackoff: time.Second, DialTimeout: o.Timeout}); err != nil {
			return nil, err
		}
		starts[i] = relay.Start
	}
	r.Started = time.Now()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			r.Outcomes[i] = Loop(ctx, starts[i](), frames, devs[i], choosers[i], LoopOptions{SLO: o.SLO, Timeout: o.Timeout})
			errs[i] = ctx.Err()
		})
	}
	wg.Wait()
	r.Took = time.Since(r.Started)
	for i, rl := range relays {
		if rl != nil {
			r.Links[i] = rl.Stats()
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	label := func(img int) int { return cal.Labels[img] }
	for i, name := range r.Strategies {
		r.Rows = append(r.Rows, Summarize(r.Trace, name, r.Outcomes[i], o.SLO, label, names, i == n-1))
	}
	progress("done in %v", r.Took.Round(time.Millisecond))
	return r, nil
}

// newPolicy is adaptive's policy over the calibrated points
// (edge.NewPolicy), its compute and bytes per point calibrated as the agent
// does at start: the median measured compute (times the slowdown) and the
// mean request size. Unless the options set it, the frame interval is the
// camera's.
func (r *Run) newPolicy() *policy.Policy {
	c := r.Calibration
	o := r.Options.Policy
	if o.FrameInterval == 0 {
		o.FrameInterval = time.Duration(float64(time.Second) / r.Options.FPS)
	}
	pol := edge.NewPolicy(c.edgePoints(), o)
	r.Policy = pol.Options()
	for i := range c.Points {
		pol.Calibrate(i, time.Duration(float64(c.Compute[i])*r.Options.Slowdown), int(c.meanBytes(i)))
	}
	return pol
}

// Strategies plans the fixed strategies of a run from bundle dirs (every
// bundle of the zoo when empty): edge-only when edgeFull, the image codecs
// at the qualities listed (to the full bundle), and the learned codec of
// every split bundle. Feature offload is left out: it sends more than the
// image here (docs/results).
func Strategies(dirs []string, jpegQ, webpQ string, edgeFull bool) ([]sweep.Strategy, []string, error) {
	all, names, err := sweep.PlanDirs(dirs, "", jpegQ, webpQ)
	if err != nil {
		return nil, nil, err
	}
	var out []sweep.Strategy
	for _, s := range all {
		if s.Kind == sweep.KindFeature || (s.Kind == sweep.KindEdge && !edgeFull) {
			continue
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, nil, errors.New("trace: no strategies left")
	}
	return out, names, nil
}

// edgePoints are the calibrated points as the edge names and ranks them.
func (c *Calibration) edgePoints() []edge.Point {
	pts := make([]edge.Point, len(c.Points))
	for i, p := range c.Points {
		pts[i] = edge.Point{Name: p.Name, Bundle: p.Bundle, Codec: p.Codec, Local: p.Local(), Accuracy: p.Accuracy}
	}
	return pts
}
