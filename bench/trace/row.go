package trace

import (
	"time"

	"github.com/splitstream/splitstream/bench/report"
)

// Row is the outcome of one strategy on one trace. Rates are shares of
// all frames unless named otherwise; latencies are in milliseconds, from a
// frame's arrival to its answer, over the answered frames.
type Row struct {
	Trace    string `json:"trace"`
	Strategy string `json:"strategy"`
	Frames   int    `json:"frames"`
	// UsefulRate is the share of all frames answered within the SLO with
	// the correct top-1 class.
	UsefulRate float64 `json:"useful_rate"`
	// SLOHitRate is the share of all frames answered within the SLO.
	SLOHitRate float64 `json:"slo_hit_rate"`
	// Top1Answered is the share of the answered frames whose top-1 class
	// is correct, in time or not.
	Top1Answered float64 `json:"top1_answered"`
	Answered     int     `json:"answered"`
	Dropped      int     `json:"dropped"` // not started within the deadline
	Errors       int     `json:"errors"`  // started but not answered (failed or timed out)
	P50          float64 `json:"p50_ms"`
	P95          float64 `json:"p95_ms"`
	P99          float64 `json:"p99_ms"`
	// BytesPerFrame is the mean request size (header and payload) over
	// the frames sent.
	BytesPerFrame float64 `json:"bytes_per_frame"`
	// EdgeMS is the median device compute per started frame, as the
	// device saw it (scaled by the slowdown).
	EdgeMS float64 `json:"edge_ms"`
	// Shares is, for adaptive, the share of the started frames handled at
	// each point, by point name.
	Shares map[string]float64 `json:"shares,omitempty"`
	// Switches is, for adaptive, how often consecutive started frames were
	// handled at different points.
	Switches int `json:"switches,omitempty"`
}

// Summarize computes a strategy's row from its outcomes. label gives the
// correct class of a frame's image; names names the points (for Shares,
// filled when adaptive is set).
func Summarize(traceName, strategy string, outcomes []Outcome, slo time.Duration, label func(image int) int, names []string, adaptive bool) Row {
	r := Row{Trace: traceName, Strategy: strategy, Frames: len(outcomes)}
	var lat, edge []float64
	var correct, inTime, useful, sent, bytes, started int
	counts := map[int]int{}
	last := -1
	for _, o := range outcomes {
		if o.Status != Dropped {
			started++
			counts[o.Point]++
			edge = append(edge, ms(o.Edge))
			if o.Bytes > 0 {
				sent++
				bytes += o.Bytes
			}
			if last >= 0 && o.Point != last {
				r.Switches++
			}
			last = o.Point
		}
		switch o.Status {
		case Dropped:
			r.Dropped++
		case Failed:
			r.Errors++
		case Answered:
			r.Answered++
			lat = append(lat, ms(o.Latency))
			ok := o.HasTop1 && o.Top1 == label(o.Image)
			if ok {
				correct++
			}
			if o.Latency <= slo {
				inTime++
				if ok {
					useful++
				}
			}
		}
	}
	r.UsefulRate = share(useful, r.Frames)
	r.SLOHitRate = share(inTime, r.Frames)
	r.Top1Answered = share(correct, r.Answered)
	r.P50, r.P95, r.P99 = report.Percentile(lat, 50), report.Percentile(lat, 95), report.Percentile(lat, 99)
	r.BytesPerFrame = float64(bytes) / float64(max(sent, 1))
	r.EdgeMS = report.Percentile(edge, 50)
	if adaptive {
		r.Shares = map[string]float64{}
		for p, n := range counts {
			r.Shares[names[p]] = share(n, started)
		}
	} else {
		r.Switches = 0
	}
	return r
}

func share(n, of int) float64 {
	if of == 0 {
		return 0
	}
	return float64(n) / float64(of)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
