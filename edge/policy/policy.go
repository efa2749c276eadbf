// Package policy chooses the edge's operating point for each frame: among
// the points it holds (the learned codec at several rates, the input sent
// as an image at a few qualities, the full model on the device), the most
// accurate one whose predicted latency fits the deadline, from running
// estimates of the device's compute time, the bytes each point sends, the
// cloud's time and the link's throughput and round trip. docs/ADAPTIVE.md
// describes the model, the estimator and the rule.
package policy

import (
	"math"
	"time"
)

// Point is one operating point.
type Point struct {
	Name string
	// Accuracy ranks the points: the top-1 recorded in the bundle's manifest.
	Accuracy float64
	// Local is true for the full model on the device: nothing is sent.
	Local bool
}

// Options tune the policy. The zero value of a field gives its default.
type Options struct {
	// SLO is the latency a frame's answer must arrive within.
	SLO time.Duration
	// Margin is the share of the SLO kept free for the estimates' errors
	// (default 0.2): a point fits when its prediction is at most
	// SLO x (1 - Margin).
	Margin float64
	// Hold is how many consecutive decisions a more accurate point must fit
	// before the policy moves up to it (default 5): hysteresis against
	// flapping. Moving down, when the current point no longer fits, is
	// immediate.
	Hold int
	// Alpha is the weight of a new sample in the running estimates
	// (exponentially weighted moving averages; default 0.2).
	Alpha float64
	// DownAfter is how many consecutive failed requests mark the link as
	// down (default 2); one success marks it up again.
	DownAfter int
	// FrameInterval is the time between the camera's frames (0: not
	// known). A point whose compute on the device takes longer cannot keep
	// up: its frames wait for the device until their deadline drops them,
	// so its prediction adds the SLO.
	FrameInterval time.Duration
	// Tolerance is the difference in accuracy below which two points
	// count as equally accurate (default 0: every difference counts). The
	// policy then takes the fastest of the fitting points within Tolerance
	// of the most accurate fitting one, and does not move up for less. One
	// standard error of the manifests' top-1 (AccuracyError) is a natural
	// choice: differences below it are noise of the measurement.
	Tolerance float64
	// ProbeEvery is how often, in decisions, a down link (or one too slow
	// for any offload point while the local point is the fastest) is
	// probed with the offload point that sends the fewest bytes (default
	// 10), so that the policy sees the link come back.
	ProbeEvery int
}

func (o *Options) defaults() {
	if o.Margin <= 0 || o.Margin >= 1 {
		o.Margin = 0.2
	}
	if o.Hold <= 0 {
		o.Hold = 5
	}
	if o.Alpha <= 0 || o.Alpha > 1 {
		o.Alpha = 0.2
	}
	if o.DownAfter <= 0 {
		o.DownAfter = 2
	}
	if o.ProbeEvery <= 0 {
		o.ProbeEvery = 10
	}
	if !(o.Tolerance > 0) {
		o.Tolerance = 0
	}
}

// AccuracyError is the standard error of a top-1 accuracy measured on n
// images: sqrt(acc (1 - acc) / n); 0 when n < 1.
func AccuracyError(acc float64, n int) float64 {
	if n < 1 || acc < 0 || acc > 1 {
		return 0
	}
	return math.Sqrt(acc * (1 - acc) / float64(n))
}

// ewma is an exponentially weighted moving average; zero samples means
// unknown.
type ewma struct {
	v float64
	n int
}

func (e *ewma) add(x, alpha float64) {
	if e.n == 0 {
		e.v = x
	} else {
		e.v += alpha * (x - e.v)
	}
	e.n++
}

// estimate is what the policy knows of one point.
type estimate struct {
	edge  ewma // ms of device compute per frame
	bytes ewma // bytes sent per frame
	cloud ewma // ms the cloud took per frame
}

// Policy holds the estimates and the current choice. It is not safe for
// concurrent use: the caller serialises Choose and the observations.
type Policy struct {
	o       Options
	points  []Point
	est     []estimate
	current int
	better  int     // consecutive decisions a more accurate point fitted
	rate    ewma    // link throughput, bytes per ms
	rtt     ewma    // ms, from the transport
	minNet  float64 // ms, the smallest network time seen: the round trip without a transport estimate
	fails   int
	down    int // decisions since the link went down
	stuck   int // decisions on a local point because nothing fitted
}

// New returns a policy over points, starting on the most accurate one.
func New(points []Point, o Options) *Policy {
	o.defaults()
	p := &Policy{o: o, points: points, est: make([]estimate, len(points))}
	p.current = p.mostAccurate(func(int) bool { return true })
	return p
}

// Options are the options in effect, defaults filled in.
func (p *Policy) Options() Options { return p.o }

// Points are the points the policy chooses among, in the order given.
func (p *Policy) Points() []Point { return p.points }

// Current is the index of the point chosen last.
func (p *Policy) Current() int { return p.current }

// Calibrate records a measured compute time and size for a point, as the
// edge measures at start (and as Observe does for every frame).
func (p *Policy) Calibrate(i int, edge time.Duration, bytes int) {
	p.est[i].edge.add(ms(edge), p.o.Alpha)
	if !p.points[i].Local {
		p.est[i].bytes.add(float64(bytes), p.o.Alpha)
	}
}

// Sample is what one answered frame measured.
type Sample struct {
	Point int
	Edge  time.Duration // compute on the device
	Bytes int           // sent (0 for a local point)
	Cloud time.Duration // the cloud's own stages
	Total time.Duration // from the start of the edge's work to the answer
}

// Observe updates the estimates with an answered frame. The network share
// (Total - Edge - Cloud) less the round trip (RTT) is the transfer time,
// which gives the link's throughput.
func (p *Policy) Observe(s Sample) {
	p.fails = 0
	a := p.o.Alpha
	e := &p.est[s.Point]
	e.edge.add(ms(s.Edge), a)
	if p.points[s.Point].Local {
		return
	}
	e.bytes.add(float64(s.Bytes), a)
	e.cloud.add(ms(s.Cloud), a)
	network := ms(s.Total - s.Edge - s.Cloud)
	if network <= 0 {
		return
	}
	if p.minNet == 0 || network < p.minNet {
		p.minNet = network
	}
	transfer := network - p.RTT()
	if transfer <= 0 || s.Bytes == 0 {
		return
	}
	// A drop in throughput counts at once, a rise is smoothed: missing a
	// deadline costs more than sending fewer bytes for a while.
	if r := float64(s.Bytes) / transfer; p.rate.n == 0 || r < p.rate.v {
		p.rate.add(r, 1)
	} else {
		p.rate.add(r, a)
	}
}

// ObserveRTT feeds a round-trip estimate from the transport (QUIC's
// smoothed RTT).
func (p *Policy) ObserveRTT(rtt time.Duration) {
	if rtt > 0 {
		p.rtt.add(ms(rtt), p.o.Alpha)
	}
}

// Fail records a request that got no answer: the link may be down.
func (p *Policy) Fail() {
	if p.fails++; p.fails == p.o.DownAfter {
		p.down = 0
	}
}

// probe counts a decision while the link is down and reports whether this
// one should probe it.
func (p *Policy) probe() bool {
	p.down++
	return p.down%p.o.ProbeEvery == 0 && p.cheapestOffload() >= 0
}

// cheapestOffload is the offload point that sends the fewest bytes, or -1.
func (p *Policy) cheapestOffload() int {
	best := -1
	for i, pt := range p.points {
		if !pt.Local && (best < 0 || p.est[i].bytes.v < p.est[best].bytes.v) {
			best = i
		}
	}
	return best
}

// LinkDown reports whether the last DownAfter requests failed.
func (p *Policy) LinkDown() bool { return p.fails >= p.o.DownAfter }

// RTT is the round-trip estimate in ms: the transport's when it gave one,
// else the smallest network time seen (0 before any).
func (p *Policy) RTT() float64 {
	if p.rtt.n > 0 {
		return p.rtt.v
	}
	return p.minNet
}

// Rate is the link throughput estimate in bytes per ms (0 before any).
func (p *Policy) Rate() float64 { return p.rate.v }

// Predict is the predicted latency of point i in ms: compute on the device,
// the transfer at the estimated throughput, a round trip and the cloud's
// time, plus the SLO when its compute is longer than the frame interval
// (the wait for the device). An offload point is +Inf while the link is
// down.
func (p *Policy) Predict(i int) float64 {
	e := &p.est[i]
	wait := 0.0
	if p.o.FrameInterval > 0 && e.edge.v > ms(p.o.FrameInterval) {
		wait = ms(p.o.SLO)
	}
	if p.points[i].Local {
		return wait + e.edge.v
	}
	if p.LinkDown() {
		return math.Inf(1)
	}
	transfer := 0.0
	if p.rate.n > 0 && p.rate.v > 0 {
		transfer = e.bytes.v / p.rate.v
	}
	return wait + e.edge.v + transfer + p.RTT() + e.cloud.v
}

// Choose picks the point for the next frame: the most accurate point whose
// prediction fits SLO x (1 - Margin) (with Tolerance, the fastest fitting
// point within Tolerance of it), moving up only after a more accurate point
// fitted Hold decisions in a row; when nothing fits, the fastest point;
// when the link is down, the local point if there is one. While it stays on
// the local point (link down, or nothing fits), every ProbeEvery-th
// decision sends with the offload point that sends the fewest bytes
// instead, so that the link's estimates can recover.
func (p *Policy) Choose() int {
	limit := ms(p.o.SLO) * (1 - p.o.Margin)
	fits := func(i int) bool { return p.Predict(i) <= limit }
	best := p.mostAccurate(fits)
	switch {
	case p.LinkDown() && p.probe():
		p.current, p.better = p.cheapestOffload(), 0
	case best < 0:
		p.current, p.better = p.fastest(), 0
		// On the local point no answer from the link comes back, so its
		// estimates would never recover: probe it now and then.
		if p.points[p.current].Local {
			if p.stuck++; p.stuck%p.o.ProbeEvery == 0 && p.cheapestOffload() >= 0 {
				p.current = p.cheapestOffload()
			}
		}
	case !fits(p.current):
		p.current, p.better = p.fastestNear(best, fits), 0 // moving down is immediate
	case p.points[best].Accuracy-p.points[p.current].Accuracy > p.o.Tolerance:
		if p.better++; p.better >= p.o.Hold {
			p.current, p.better = p.fastestNear(best, fits), 0
		}
	default:
		p.better = 0
	}
	return p.current
}

// fastestNear returns the fitting point with the smallest prediction among
// those within Tolerance of best's accuracy (best itself when Tolerance is
// 0, or on a tie of predictions).
func (p *Policy) fastestNear(best int, fits func(int) bool) int {
	out := best
	for i, pt := range p.points {
		if fits(i) && p.points[best].Accuracy-pt.Accuracy <= p.o.Tolerance && p.Predict(i) < p.Predict(out) {
			out = i
		}
	}
	return out
}

// mostAccurate returns the most accurate point that ok accepts (the first
// given on a tie), or -1.
func (p *Policy) mostAccurate(ok func(int) bool) int {
	best := -1
	for i, pt := range p.points {
		if ok(i) && (best < 0 || pt.Accuracy > p.points[best].Accuracy) {
			best = i
		}
	}
	return best
}

// fastest returns the point with the smallest prediction; while the link
// is down the local point wins, being the only finite one, and without a
// local point the offload point that sends the fewest bytes, which adds the
// least to the queue the link must drain when it comes back.
func (p *Policy) fastest() int {
	best := 0
	for i := range p.points {
		if p.Predict(i) < p.Predict(best) {
			best = i
		}
	}
	if math.IsInf(p.Predict(best), 1) && p.cheapestOffload() >= 0 {
		return p.cheapestOffload()
	}
	return best
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
