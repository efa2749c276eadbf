// Package report writes the results of a bench sweep: one Row per strategy
// and link, as CSV, JSON, a Markdown report and PNG plots.
package report

import (
	"math"
	"slices"
	"time"
)

// Row is the outcome of one strategy on one link. Latencies are in
// milliseconds; the stage figures are medians over the timed requests.
type Row struct {
	Strategy string  `json:"strategy"`
	Kind     string  `json:"kind"` // edge, input, feature or learned
	Bundle   string  `json:"bundle"`
	Link     string  `json:"link"`      // the link's spec (bench/link syntax)
	RateMbps float64 `json:"rate_mbps"` // uplink rate; 0: no limit
	RTTms    float64 `json:"rtt_ms"`
	Loss     float64 `json:"loss"` // uplink loss probability

	Top1           float64 `json:"top1"`
	MAP50          float64 `json:"map50"`
	MIoU           float64 `json:"miou"`
	AccuracyImages int     `json:"accuracy_images"`
	// BytesPerImage is the mean payload per image over the accuracy set;
	// each request also carries a fixed header (HeaderBytes).
	BytesPerImage float64 `json:"bytes_per_image"`
	HeaderBytes   int     `json:"header_bytes"`

	TimedImages int     `json:"timed_images"`
	Errors      int     `json:"errors"`
	P50         float64 `json:"p50_ms"`
	P95         float64 `json:"p95_ms"`
	Edge        float64 `json:"edge_ms"`     // preprocess + encoder + entropy or image coding (edge-only: the whole model)
	Transfer    float64 `json:"transfer_ms"` // request bytes x 8 / uplink rate: computed, not measured
	// ReplyBytes is the mean size of the cloud's reply frames; ReplyTransfer
	// their bytes x 8 / downlink rate (median). The overhead includes it.
	ReplyBytes    float64 `json:"reply_bytes"`
	ReplyTransfer float64 `json:"reply_transfer_ms"`
	Network       float64 `json:"network_ms"` // measured round trip minus the cloud's stages
	Cloud         float64 `json:"cloud_ms"`   // queue + decode + trunk + heads + post, as the cloud reports them
	// Overhead is the median over requests of: measured latency - (edge
	// compute + request bytes x 8 / rate + RTT + cloud compute).
	Overhead float64 `json:"overhead_ms"`
	// Mismatches counts timed replies whose top-1 class differs from the
	// accuracy pass for the same image (0 when the link changes nothing).
	Mismatches int `json:"mismatches"`
	// EdgeSlowdown is the factor applied to the measured edge compute; 1
	// means the figures are as measured on this machine.
	EdgeSlowdown float64 `json:"edge_slowdown"`
}

// Sample is one timed request, in milliseconds.
type Sample struct {
	Total      float64 // measured end to end on the edge
	Edge       float64 // preprocess + encoder + entropy coding
	Network    float64 // round trip minus the cloud's stages
	Cloud      float64 // the cloud's stages
	ReqBytes   int     // header and payload
	ReplyBytes int     // the reply frame
}

// TransferMS is the time to put n bytes on a link of rate bit/s, in
// milliseconds; 0 for an unlimited link.
func TransferMS(n int, rateBps float64) float64 {
	if rateBps <= 0 {
		return 0
	}
	return float64(n) * 8 / rateBps * 1000
}

// Overhead is what the runtime adds to a request beyond the work and the
// link: total - (edge + bytes x 8 / rate + rtt + cloud), in milliseconds.
// It includes QUIC and TLS framing, packet headers, acknowledgements,
// scheduling, copies and the request and reply frames' own transfer.
func Overhead(s Sample, rateBps float64, rtt time.Duration) float64 {
	return s.Total - s.Edge - TransferMS(s.ReqBytes, rateBps) - ms(rtt) - s.Cloud
}

// Slow applies an edge slowdown factor f to a sample: the edge compute is
// multiplied by f and the total grows by the difference. Nothing else
// changes, so the overhead is the same before and after.
func Slow(s Sample, f float64) Sample {
	if f <= 0 || f == 1 {
		return s
	}
	extra := (f - 1) * s.Edge
	s.Edge += extra
	s.Total += extra
	return s
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

// Percentile is the p-th percentile (0..100, nearest rank) of v, which it
// sorts; 0 for an empty slice.
func Percentile(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	k := int(math.Ceil(p/100*float64(len(v)))) - 1
	return v[max(0, min(k, len(v)-1))]
}

// Fill sets the latency columns of r from the samples of its timed
// requests on a link of rates up and down (bit/s) and round trip rtt,
// after applying the edge slowdown factor f (1: none).
func (r *Row) Fill(samples []Sample, up, down float64, rtt time.Duration, f float64) {
	n := len(samples)
	tot, edge, tr, rep, net, cl, over := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
	replyBytes := 0
	for i, s := range samples {
		s = Slow(s, f)
		tot[i], edge[i], net[i], cl[i] = s.Total, s.Edge, s.Network, s.Cloud
		tr[i] = TransferMS(s.ReqBytes, up)
		rep[i] = TransferMS(s.ReplyBytes, down)
		over[i] = Overhead(s, up, rtt)
		replyBytes += s.ReplyBytes
	}
	r.TimedImages = n
	r.P50, r.P95 = Percentile(tot, 50), Percentile(tot, 95)
	r.Edge, r.Transfer, r.Network, r.Cloud = Percentile(edge, 50), Percentile(tr, 50), Percentile(net, 50), Percentile(cl, 50)
	r.ReplyTransfer = Percentile(rep, 50)
	if n > 0 {
		r.ReplyBytes = float64(replyBytes) / float64(n)
	}
	r.Overhead = Percentile(over, 50)
	if f <= 0 {
		f = 1
	}
	r.EdgeSlowdown = f
}
