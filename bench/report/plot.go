package report

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// File names of the plots that WriteFiles writes.
const (
	PlotLatencyFile  = "latency_vs_bandwidth.png"
	PlotAccuracyFile = "accuracy_vs_bytes.png"
)

const (
	plotW = 8 * vg.Inch
	plotH = 5 * vg.Inch
)

func savePNG(w io.Writer, p *plot.Plot) error {
	wt, err := p.WriterTo(plotW, plotH, "png")
	if err != nil {
		return err
	}
	_, err = wt.WriteTo(w)
	return err
}

func slowNote(rep Report) string {
	if s := rep.Meta.Slowdown; s > 0 && s != 1 {
		return fmt.Sprintf(" [edge compute scaled x%.2f, emulated]", s)
	}
	return ""
}

// PlotLatency draws the p50 latency against the uplink rate, one line per
// strategy, for the links with a rate limit (log-log).
func PlotLatency(w io.Writer, rep Report) error {
	p := plot.New()
	p.Title.Text = "p50 latency against uplink bandwidth" + slowNote(rep)
	p.X.Label.Text = "uplink rate (Mbit/s)"
	p.Y.Label.Text = "p50 latency (ms)"
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Tick.Marker, p.Y.Tick.Marker = ticks125{}, ticks125{}
	p.Legend.Top = true
	p.Legend.TextStyle.Font.Size = vg.Points(8)
	var args []any
	for _, s := range strategies(rep.Rows) {
		var pts plotter.XYs
		for _, r := range rep.Rows {
			if r.Strategy == s && r.RateMbps > 0 && r.P50 > 0 && r.Errors == 0 {
				pts = append(pts, plotter.XY{X: r.RateMbps, Y: r.P50})
			}
		}
		if len(pts) > 0 {
			args = append(args, s, pts)
		}
	}
	if len(args) == 0 {
		return savePNG(w, p)
	}
	if err := plotutil.AddLinePoints(p, args...); err != nil {
		return err
	}
	p.Add(plotter.NewGrid())
	// Room on the right for the legend (log axis: a factor, not a margin).
	p.X.Max *= 6
	return savePNG(w, p)
}

// PlotAccuracy draws top-1 against bytes per image, one labelled point per
// strategy (log x).
func PlotAccuracy(w io.Writer, rep Report) error {
	p := plot.New()
	p.Title.Text = "top-1 accuracy against bytes per image"
	p.X.Label.Text = "bytes per image (payload)"
	p.Y.Label.Text = "top-1"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = ticks125{}
	seen := map[string]bool{}
	var xys plotter.XYs
	var labels []string
	for _, r := range rep.Rows {
		if seen[r.Strategy] || r.BytesPerImage <= 0 {
			continue // edge-only sends nothing: no point on a log axis
		}
		seen[r.Strategy] = true
		xys = append(xys, plotter.XY{X: r.BytesPerImage, Y: r.Top1})
		labels = append(labels, r.Strategy)
	}
	if len(xys) == 0 {
		return savePNG(w, p)
	}
	sc, err := plotter.NewScatter(xys)
	if err != nil {
		return err
	}
	sc.GlyphStyle.Color = color.RGBA{B: 200, A: 255}
	sc.GlyphStyle.Radius = vg.Points(3)
	lb, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: labels})
	if err != nil {
		return err
	}
	for i := range lb.TextStyle {
		lb.TextStyle[i].Font.Size = vg.Points(7)
		lb.TextStyle[i].XAlign = -0.0
	}
	lb.Offset = vg.Point{X: vg.Points(4), Y: vg.Points(2)}
	p.Add(sc, lb, plotter.NewGrid())
	// Room for the labels on a log axis.
	p.X.Min, p.X.Max = p.X.Min/1.5, p.X.Max*2
	p.Y.Min, p.Y.Max = p.Y.Min-0.02, p.Y.Max+0.02
	for _, r := range rep.Rows {
		if r.Kind == "edge" {
			p.Title.Text += fmt.Sprintf(" (edge-only, nothing sent: top-1 %.4f)", r.Top1)
			break
		}
	}
	return savePNG(w, p)
}

// ticks125 labels a log axis at 1, 2 and 5 times the powers of ten.
type ticks125 struct{}

// Ticks implements plot.Ticker.
func (ticks125) Ticks(lo, hi float64) []plot.Tick {
	var out []plot.Tick
	if !(lo > 0) || !(hi > lo) {
		return out
	}
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		p := math.Pow(10, e)
		for _, m := range []float64{1, 2, 5} {
			if v := m * p; v >= lo && v <= hi {
				out = append(out, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'g', -1, 64)})
			}
		}
		for m := 3.0; m < 10; m++ {
			if v := m * p; m != 5 && v >= lo && v <= hi {
				out = append(out, plot.Tick{Value: v})
			}
		}
	}
	return out
}
