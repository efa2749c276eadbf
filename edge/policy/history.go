package policy

import (
	"math"
	"slices"
)

// The network-time history. Each answered request gives one sample of the
// network's share of its latency (the total less the device's compute and
// the cloud's own time); each failed request a sample of +Inf. The pool
// keeps the last poolWindow samples of all points, and every point is
// judged by all of them, each carried over to its size (extrapolate) with
// the link's throughput, which the pool's spread of sizes gives and which
// is forgotten Expire decisions after it was last seen. Judging every
// point by the same samples makes their scores differ by what differs
// between them (compute, cloud time, size), not by the luck of the few
// frames each was sent with.
const (
	poolWindow = 32 // samples kept

	// minSpread is the standard deviation of request sizes in the pool,
	// in bytes, above which the pool's slope of network time over bytes
	// is taken as the link's throughput.
	minSpread = 300
)

// netSample is one request's network time.
type netSample struct {
	bytes float64 // its size
	net   float64 // ms; +Inf for a failure
}

// ring keeps the last n samples.
type ring struct {
	s    []netSample
	next int
}

func (r *ring) add(x netSample, n int) {
	if len(r.s) < n {
		r.s = append(r.s, x)
		return
	}
	r.s[r.next] = x
	r.next = (r.next + 1) % n
}

// record adds a network-time sample of point i.
func (p *Policy) record(i int, bytes, net float64) {
	p.pool.add(netSample{bytes: bytes, net: net}, poolWindow)
	p.fitRate()
}

// fitRate estimates the link's throughput as the inverse of the slope of
// network time over request size among the pool's answered samples
// (least squares), when their sizes differ enough to show one. A slope of zero
// or less (larger requests were not slower) leaves the rate unknown:
// sizes then carry over at no cost.
func (p *Policy) fitRate() {
	var n, sb, sn float64
	for _, x := range p.pool.s {
		if !math.IsInf(x.net, 1) {
			n, sb, sn = n+1, sb+x.bytes, sn+x.net
		}
	}
	if n == 0 {
		return
	}
	mb, mn := sb/n, sn/n
	var cov, vb float64
	for _, x := range p.pool.s {
		if !math.IsInf(x.net, 1) {
			cov += (x.bytes - mb) * (x.net - mn)
			vb += (x.bytes - mb) * (x.bytes - mb)
		}
	}
	if math.Sqrt(vb/n) < minSpread {
		return // one size: no slope to read
	}
	p.rateAt = p.decisions
	if slope := cov / vb; slope > 0 {
		p.rate = 1 / slope
	} else {
		p.rate = 0
	}
}

// netSamples appends to dst the network times point i is expected to see:
// the pool's, carried over to its size.
func (p *Policy) netSamples(dst []float64, i int) []float64 {
	for _, x := range p.pool.s {
		dst = append(dst, p.extrapolate(x, p.est[i].bytes.v))
	}
	return dst
}

// extrapolate carries a network time measured at x.bytes over to a request
// of bytes. With a known throughput the difference in size costs its
// transfer time, down to no less than the round trip. Without one, a
// larger request is taken to cost nothing more (an optimism that its
// samples soon correct, by showing the throughput) and a smaller one to save the share of the time
// above the round trip that its size is smaller by, as if the excess were
// all transfer.
func (p *Policy) extrapolate(x netSample, bytes float64) float64 {
	if math.IsInf(x.net, 1) || bytes == x.bytes {
		return x.net
	}
	base := p.RTT()
	if rate := p.Rate(); rate > 0 {
		return max(base, x.net+(bytes-x.bytes)/rate)
	}
	if bytes > x.bytes || x.bytes == 0 || x.net <= base {
		return x.net
	}
	return base + (x.net-base)*bytes/x.bytes
}

// fitShare is the share of point i's expected latencies within limit ms:
// its estimated chance of meeting the deadline.
func (p *Policy) fitShare(i int, limit float64) float64 {
	fixed := p.fixedCost(i)
	if p.points[i].Local {
		return bool01(fixed <= limit)
	}
	if p.LinkDown() {
		return 0
	}
	nets := p.netSamples(p.nets[:0], i)
	p.nets = nets
	if len(nets) == 0 {
		return bool01(fixed+p.RTT() <= limit) // nothing seen yet
	}
	in := 0
	for _, n := range nets {
		if fixed+n <= limit {
			in++
		}
	}
	return float64(in) / float64(len(nets))
}

// fixedCost is point i's latency besides the network in ms: the device's
// compute (plus the SLO when the device cannot keep up with the camera)
// and, offloaded, the cloud's time.
func (p *Policy) fixedCost(i int) float64 {
	e := &p.est[i]
	cost := e.edge.v
	if p.o.FrameInterval > 0 && e.edge.v > ms(p.o.FrameInterval) {
		cost += ms(p.o.SLO)
	}
	if !p.points[i].Local {
		cost += e.cloud.v
	}
	return cost
}

// Predict is the median predicted latency of point i in ms (the network's
// share from its expected network times); +Inf for an offload point while
// the link is down or when most of its requests fail.
func (p *Policy) Predict(i int) float64 {
	fixed := p.fixedCost(i)
	if p.points[i].Local {
		return fixed
	}
	if p.LinkDown() {
		return math.Inf(1)
	}
	nets := p.netSamples(p.nets[:0], i)
	p.nets = nets
	if len(nets) == 0 {
		return fixed + p.RTT()
	}
	slices.Sort(nets)
	return fixed + nets[(len(nets)-1)/2]
}

func bool01(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
