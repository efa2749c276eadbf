package trace

import (
	"fmt"
	"image/color"
	"io"
	"strconv"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// capacityWindow is the window over which the timeline averages the
// traces' capacity.
const capacityWindow = 500 * time.Millisecond

// PlotTimeline draws the run over time as a PNG: the traces' capacity
// (Trace.Capacity), each strategy's latency per answered frame against
// the SLO, and adaptive's point per frame.
func (r *Run) PlotTimeline(w io.Writer) error {
	o := r.Options
	capPlot := plot.New()
	capPlot.Title.Text = fmt.Sprintf("%s: link capacity (%v windows)", r.Trace, capacityWindow)
	capPlot.Y.Label.Text = "Mbit/s"
	var args []any
	for _, t := range []struct {
		name string
		c    func() ([]int64, error)
	}{{"uplink", func() ([]int64, error) { return o.Up.Capacity(capacityWindow, o.Duration) }},
		{"downlink", func() ([]int64, error) { return o.Down.Capacity(capacityWindow, o.Duration) }}} {
		c, err := t.c()
		if err != nil {
			return err
		}
		xys := make(plotter.XYs, 0, 2*len(c))
		for k, bytes := range c {
			mbps := float64(bytes) * 8 / capacityWindow.Seconds() / 1e6
			x0 := (time.Duration(k) * capacityWindow).Seconds()
			xys = append(xys, plotter.XY{X: x0, Y: mbps}, plotter.XY{X: x0 + capacityWindow.Seconds(), Y: mbps})
		}
		args = append(args, t.name, xys)
	}
	if err := plotutil.AddLines(capPlot, args...); err != nil {
		return err
	}

	latPlot := plot.New()
	latPlot.Title.Text = fmt.Sprintf("latency per answered frame (SLO %v; edge compute x%g)", o.SLO, o.Slowdown)
	latPlot.Y.Label.Text = "ms (log)"
	latPlot.Y.Scale = plot.LogScale{}
	latPlot.Y.Tick.Marker = msTicks{}
	latPlot.Legend.TextStyle.Font.Size = vg.Points(7)
	latPlot.Legend.Top = true
	for i, name := range r.Strategies {
		var xys plotter.XYs
		for _, oc := range r.Outcomes[i] {
			if oc.Status == Answered && oc.Latency > 0 {
				xys = append(xys, plotter.XY{X: oc.At.Seconds(), Y: ms(oc.Latency)})
			}
		}
		if len(xys) == 0 {
			continue
		}
		sc, err := plotter.NewScatter(xys)
		if err != nil {
			return err
		}
		sc.GlyphStyle.Radius = vg.Points(1)
		sc.GlyphStyle.Color = plotutil.Color(i)
		sc.GlyphStyle.Shape = draw.CircleGlyph{}
		if name == AdaptiveName {
			sc.GlyphStyle.Color = color.Black
			sc.GlyphStyle.Radius = vg.Points(1.6)
		}
		latPlot.Add(sc)
		latPlot.Legend.Add(name, sc)
	}
	slo := plotter.NewFunction(func(float64) float64 { return ms(o.SLO) })
	slo.Color, slo.Dashes = color.RGBA{R: 200, A: 255}, []vg.Length{vg.Points(4), vg.Points(2)}
	latPlot.Add(slo)
	latPlot.Legend.Add("SLO", slo)

	choice := plot.New()
	choice.Title.Text = "adaptive's point per frame (x: dropped or failed)"
	choice.X.Label.Text = "time from the run's start (s)"
	var ticks []plot.Tick
	for i, name := range r.Strategies[:len(r.Strategies)-1] {
		ticks = append(ticks, plot.Tick{Value: float64(i), Label: name})
	}
	choice.Y.Tick.Marker = plot.ConstantTicks(ticks)
	var ok, bad plotter.XYs
	for _, oc := range r.Outcomes[len(r.Outcomes)-1] {
		switch {
		case oc.Status == Answered:
			ok = append(ok, plotter.XY{X: oc.At.Seconds(), Y: float64(oc.Point)})
		case oc.Point >= 0:
			bad = append(bad, plotter.XY{X: oc.At.Seconds(), Y: float64(oc.Point)})
		}
	}
	for _, set := range []struct {
		xys   plotter.XYs
		shape draw.GlyphDrawer
		c     color.Color
	}{{ok, draw.CircleGlyph{}, color.Black}, {bad, draw.CrossGlyph{}, color.RGBA{R: 200, A: 255}}} {
		if len(set.xys) == 0 {
			continue
		}
		sc, err := plotter.NewScatter(set.xys)
		if err != nil {
			return err
		}
		sc.GlyphStyle.Shape, sc.GlyphStyle.Color, sc.GlyphStyle.Radius = set.shape, set.c, vg.Points(1.5)
		choice.Add(sc)
	}
	choice.Y.Min, choice.Y.Max = -0.5, float64(len(ticks))-0.5
	for _, p := range []*plot.Plot{capPlot, latPlot, choice} {
		p.X.Min, p.X.Max = 0, o.Duration.Seconds()
		p.Add(plotter.NewGrid())
	}

	img := vgimg.New(10*vg.Inch, 11*vg.Inch)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 3, Cols: 1, PadX: vg.Millimeter, PadY: 3 * vg.Millimeter, PadTop: 2 * vg.Millimeter, PadBottom: 2 * vg.Millimeter, PadLeft: 2 * vg.Millimeter, PadRight: 2 * vg.Millimeter}
	canvases := plot.Align([][]*plot.Plot{{capPlot}, {latPlot}, {choice}}, tiles, dc)
	capPlot.Draw(canvases[0][0])
	latPlot.Draw(canvases[1][0])
	choice.Draw(canvases[2][0])
	_, err := vgimg.PngCanvas{Canvas: img}.WriteTo(w)
	return err
}

// msTicks labels a latency axis in milliseconds at 1, 2 and 5 times the
// powers of ten.
type msTicks struct{}

// Ticks implements plot.Ticker.
func (msTicks) Ticks(lo, hi float64) []plot.Tick {
	var out []plot.Tick
	for p := 0.1; p <= 1e6; p *= 10 {
		for _, m := range []float64{1, 2, 5} {
			if v := m * p; v >= lo && v <= hi {
				out = append(out, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'g', 4, 64)})
			}
		}
	}
	return out
}
