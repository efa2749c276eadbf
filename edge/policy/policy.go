// Package policy chooses the edge's operating point for each frame: among
// the points it holds (the learned codec at several rates, the input sent
// as an image at a few qualities, the full model on the device), the one
// expected to give the most correct answers in time: its accuracy times
// its chance of meeting the deadline, estimated from the device's compute
// time, the cloud's time and the recent network times of the requests,
// carried over between points by their sizes. docs/ADAPTIVE.md describes
// the model, the estimator and the rule.
package policy

import (
	"math"
	"slices"
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
	// Margin is the share of the SLO kept free for the errors of the
	// compute estimates (default 0.05): a latency fits when it is at most
	// SLO x (1 - Margin). The network's variation is in the policy's
	// samples already.
	Margin float64
	// Hold is how many consecutive decisions a more accurate point must
	// score best before the policy moves up to it (default 5): hysteresis
	// against flapping. Moving to a less accurate point, when the current
	// one scores worse, is immediate.
	Hold int
	// Alpha is the weight of a new sample in the running estimates of
	// bytes and cloud time (exponentially weighted moving averages; default
	// 0.2). The device's compute is the median of its last 9 samples.
	Alpha float64
	// DownAfter is how many consecutive failed requests mark the link as
	// down (default 2); one success marks it up again.
	DownAfter int
	// FrameInterval is the time between the camera's frames (0: not
	// known). A point whose compute on the device takes longer cannot keep
	// up: its frames wait for the device until their deadline drops them,
	// so its prediction adds the SLO.
	FrameInterval time.Duration
	// Tolerance is the difference in score (accuracy x chance of meeting
	// the SLO) below which the policy does not switch (default 0: every
	// difference counts; Hold keeps it from flapping). A first version set
	// one standard error of the best manifest top-1 (0.016 on 500 images)
	// and stayed on learned b0.11 (0.844) where PNG (0.858) met the SLO as
	// often.
	Tolerance float64
	// ProbeEvery is how often, in decisions, a down link (or one too slow
	// for any offload point while the local point is the fastest) is
	// probed with the offload point that sends the fewest bytes (default
	// 10), so that the policy sees the link come back.
	ProbeEvery int
	// Expire is how many decisions the link's throughput, once measured,
	// is remembered without a new measure (default 300: 30 s at 10 fps).
	// The throughput carries one point's network times over to another's
	// size; forgotten, a larger point is taken to cost no more than the
	// one in use, so that the policy tries it again.
	Expire int
}

func (o *Options) defaults() {
	if o.Margin <= 0 || o.Margin >= 1 {
		o.Margin = 0.05
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
	if o.Expire <= 0 {
		o.Expire = 300
	}
	if !(o.Tolerance > 0) {
		o.Tolerance = 0
	}
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

// median is the median of the last medianWindow samples: one late sample
// (the device preempted) does not move it.
type median struct {
	s    [medianWindow]float64
	n    int
	next int
	v    float64
}

const medianWindow = 9

func (m *median) add(x float64) {
	m.s[m.next] = x
	m.next = (m.next + 1) % medianWindow
	m.n = min(m.n+1, medianWindow)
	xs := append([]float64(nil), m.s[:m.n]...)
	slices.Sort(xs)
	m.v = xs[(m.n-1)/2]
}

// estimate is what the policy knows of one point.
type estimate struct {
	edge  median // ms of device compute per frame
	bytes ewma   // bytes sent per frame
	cloud ewma   // ms the cloud took per frame
}

// Policy holds the estimates and the current choice. It is not safe for
// concurrent use: the caller serialises Choose and the observations.
type Policy struct {
	o         Options
	points    []Point
	est       []estimate
	pool      ring // every point's recent network times
	current   int
	better    int     // consecutive decisions a more accurate point scored best
	rate      float64 // link throughput in bytes per ms; 0: unknown
	rateAt    int     // the decision count when it was fitted
	rtt       ewma    // ms, from the transport
	minNet    float64 // ms, the smallest network time seen: the round trip without a transport estimate
	decisions int
	fails     int
	down      int // decisions since the link went down
	stuck     int // decisions on a local point because nothing fitted
	nets      []float64
}

// New returns a policy over points, starting on the most accurate one.
func New(points []Point, o Options) *Policy {
	o.defaults()
	p := &Policy{o: o, points: points, est: make([]estimate, len(points))}
	for i, pt := range points {
		if pt.Accuracy > points[p.current].Accuracy {
			p.current = i
		}
	}
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
	p.est[i].edge.add(ms(edge))
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

// Observe updates the estimates with an answered frame; an offloaded one
// marks the link up and its network time (Total - Edge - Cloud) joins the
// point's samples.
func (p *Policy) Observe(s Sample) {
	a := p.o.Alpha
	e := &p.est[s.Point]
	e.edge.add(ms(s.Edge))
	if p.points[s.Point].Local {
		return // an answer from the device says nothing of the link
	}
	p.fails = 0
	e.bytes.add(float64(s.Bytes), a)
	e.cloud.add(ms(s.Cloud), a)
	network := ms(s.Total - s.Edge - s.Cloud)
	if network <= 0 {
		return
	}
	if p.minNet == 0 || network < p.minNet {
		p.minNet = network
	}
	p.record(s.Point, float64(s.Bytes), network)
}

// ObserveRTT feeds the transport's round trip without queueing (QUIC's
// minimum RTT): the least network time any request can take.
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

// FailPoint records a request sent with point i that got no answer: as
// Fail, and the point's network time counts as infinite.
func (p *Policy) FailPoint(i int) {
	p.Fail()
	if !p.points[i].Local {
		p.record(i, p.est[i].bytes.v, math.Inf(1))
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

// Rate is the link throughput estimate in bytes per ms (0: unknown, or
// not seen for Expire decisions).
func (p *Policy) Rate() float64 {
	if p.decisions-p.rateAt > p.o.Expire {
		return 0
	}
	return p.rate
}

// Score is point i's expected share of useful answers: its accuracy times
// its estimated chance of answering within SLO x (1 - Margin).
func (p *Policy) Score(i int) float64 {
	return p.points[i].Accuracy * p.fitShare(i, ms(p.o.SLO)*(1-p.o.Margin))
}

// Choose picks the point for the next frame: the one with the best score
// (accuracy x chance of meeting the SLO), staying on the current point
// while it has a chance and its score is within Tolerance of the best,
// and moving to a more accurate point only after it was the best Hold
// decisions in a row; when no point has a chance, the fastest; when the
// link is down, the local point if there is one. While it stays on the
// local point (link down, or nothing fits), every ProbeEvery-th decision
// sends with the offload point that sends the fewest bytes instead, so
// that the link's estimates can recover.
func (p *Policy) Choose() int {
	p.decisions++
	best, scores, chances := p.best()
	switch {
	case p.LinkDown() && p.probe():
		p.current, p.better = p.cheapestOffload(), 0
	case chances[best] == 0:
		p.current, p.better = p.fastest(), 0
		// On the local point no answer from the link comes back, so its
		// estimates would never recover: probe it now and then.
		if p.points[p.current].Local {
			if p.stuck++; p.stuck%p.o.ProbeEvery == 0 && p.cheapestOffload() >= 0 {
				p.current = p.cheapestOffload()
			}
		}
	case best == p.current || chances[p.current] > 0 && scores[best]-scores[p.current] <= p.o.Tolerance:
		p.better = 0
	case p.points[best].Accuracy <= p.points[p.current].Accuracy:
		p.current, p.better = best, 0 // moving down is immediate
	default:
		if p.better++; p.better >= p.o.Hold {
			p.current, p.better = best, 0
		}
	}
	return p.current
}

// best returns the point with the highest score (on a tie, the higher
// chance of meeting the SLO, then the first given: points of unknown
// accuracy, 0, still rank by their chance), and every point's score and
// chance.
func (p *Policy) best() (best int, scores, chances []float64) {
	scores, chances = make([]float64, len(p.points)), make([]float64, len(p.points))
	limit := ms(p.o.SLO) * (1 - p.o.Margin)
	for i, pt := range p.points {
		chances[i] = p.fitShare(i, limit)
		scores[i] = pt.Accuracy * chances[i]
		if scores[i] > scores[best] || scores[i] == scores[best] && chances[i] > chances[best] {
			best = i
		}
	}
	return best, scores, chances
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
