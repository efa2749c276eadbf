package trace

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/splitstream/splitstream/bench/link"
	"github.com/splitstream/splitstream/bench/report"
)

// File names of what WriteFiles writes.
const (
	JSONFile     = "report.json"
	MarkdownFile = "report.md"
	TimelineFile = "timeline.png"
)

// Meta describes a run for its report.
type Meta struct {
	Command     string  `json:"command"`
	Date        string  `json:"date"`
	Machine     string  `json:"machine"`
	LoadBefore  string  `json:"loadavg_before"` // /proc/loadavg when the run began, if readable
	LoadAfter   string  `json:"loadavg_after"`
	Trace       string  `json:"trace"`
	UpMbps      float64 `json:"up_mean_mbps"`
	DownMbps    float64 `json:"down_mean_mbps"`
	RTTms       float64 `json:"rtt_ms"`
	Queue       string  `json:"queue"`
	SLOms       float64 `json:"slo_ms"`
	FPS         float64 `json:"fps"`
	DurationS   float64 `json:"duration_s"`
	TimeoutMS   float64 `json:"timeout_ms"`
	EdgeFull    bool    `json:"edge_full"`
	Slowdown    float64 `json:"edge_slowdown"`
	Engine      string  `json:"engine"`
	Seed        uint64  `json:"seed"`
	Images      int     `json:"images"` // the cycle's length
	CalibrateS  float64 `json:"calibrate_s"`
	RunS        float64 `json:"run_s"`
	ComputeLate Late    `json:"compute_late"` // replayed device compute
	CloudLate   Late    `json:"cloud_late"`   // replayed cloud compute
	RelayLate   Late    `json:"relay_late"`   // datagrams leaving the relays' delay lines, over all relays
	QueueDrops  uint64  `json:"queue_drops"`  // datagrams the relays' queues dropped, both ways, all relays
	// Policy is adaptive's options: margin, hold, alpha, down-after,
	// probe-every, tolerance, frame interval.
	Policy string      `json:"policy"`
	Points []PointInfo `json:"points"`
}

// Late summarises how late waits ended, in milliseconds.
type Late struct {
	N      int     `json:"n"`
	MeanMS float64 `json:"mean_ms"`
	MaxMS  float64 `json:"max_ms"`
}

// PointInfo is one operating point as the report lists it.
type PointInfo struct {
	Name     string  `json:"name"`
	Kind     string  `json:"kind"`
	Bundle   string  `json:"bundle"`
	Accuracy float64 `json:"accuracy"` // what the policy ranks it by
	EdgeMS   float64 `json:"edge_ms"`  // median measured compute, unscaled
	CloudMS  float64 `json:"cloud_ms"` // median cloud time (offload points)
	Bytes    float64 `json:"bytes"`    // mean request size
}

// Report is what report.json holds.
type Report struct {
	Meta Meta  `json:"meta"`
	Rows []Row `json:"rows"`
}

// LoadAvg returns /proc/loadavg's first three figures, or "".
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

// NewReport describes run r; meta's command, date, load and deployment
// fields are the caller's.
func (r *Run) NewReport(meta Meta) Report {
	o, c := r.Options, r.Calibration
	meta.Machine = report.Machine()
	meta.Trace = r.Trace
	meta.UpMbps, meta.DownMbps = o.Up.MeanBps()/1e6, o.Down.MeanBps()/1e6
	meta.RTTms, meta.SLOms, meta.TimeoutMS = ms(o.RTT), ms(o.SLO), ms(o.Timeout)
	meta.Queue, meta.FPS, meta.DurationS = o.Queue.String(), o.FPS, o.Duration.Seconds()
	meta.Slowdown, meta.Engine, meta.Seed, meta.Images = o.Slowdown, o.Engine, o.Seed, len(c.Images)
	meta.CalibrateS, meta.RunS = c.Took.Seconds(), r.Took.Seconds()
	meta.ComputeLate, meta.CloudLate = lateOf(r.ComputeLate), lateOf(r.CloudLate)
	po := r.Policy
	meta.Policy = fmt.Sprintf("margin %g, hold %d, alpha %g, down after %d, probe every %d, tolerance %.4f, frame interval %v, expire %d",
		po.Margin, po.Hold, po.Alpha, po.DownAfter, po.ProbeEvery, po.Tolerance, po.FrameInterval, po.Expire)
	var n uint64
	var total time.Duration
	for _, s := range r.Links {
		for _, d := range []link.DirStats{s.Up, s.Down} {
			n += d.Forwarded + d.SendErrors
			total += d.LateTotal
			meta.RelayLate.MaxMS = max(meta.RelayLate.MaxMS, ms(d.LateMax))
			meta.QueueDrops += d.Dropped
		}
	}
	meta.RelayLate.N = int(n)
	if n > 0 {
		meta.RelayLate.MeanMS = ms(total) / float64(n)
	}
	for i, p := range c.Points {
		var edge, cloud []float64
		for _, w := range c.Work[i] {
			edge = append(edge, ms(w.Edge))
			if w.Reply != nil {
				cloud = append(cloud, ms(w.Cloud))
			}
		}
		meta.Points = append(meta.Points, PointInfo{Name: p.Name, Kind: p.Kind, Bundle: p.Bundle.Name, Accuracy: p.Accuracy,
			EdgeMS: report.Percentile(edge, 50), CloudMS: report.Percentile(cloud, 50), Bytes: c.meanBytes(i)})
	}
	return Report{Meta: meta, Rows: r.Rows}
}

func lateOf(l *Lateness) Late {
	n, mean, mx := l.Summary()
	return Late{N: n, MeanMS: ms(mean), MaxMS: ms(mx)}
}

// WriteJSON writes rows as one indented JSON array.
func WriteJSON(w io.Writer, rows []Row) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rows)
}

// WriteFiles writes report.json, report.md and timeline.png into dir and
// returns their paths.
func (r *Run) WriteFiles(dir string, rep Report) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var written []string
	write := func(name string, fn func(io.Writer) error) error {
		path := filepath.Join(dir, name)
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		if err := fn(f); err != nil {
			f.Close()
			return fmt.Errorf("%s: %w", path, err)
		}
		written = append(written, path)
		return f.Close()
	}
	err := write(JSONFile, func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	})
	if err == nil {
		err = write(MarkdownFile, func(w io.Writer) error { return WriteMarkdown(w, rep) })
	}
	if err == nil {
		err = write(TimelineFile, r.PlotTimeline)
	}
	return written, err
}

// Best returns the fixed row with the highest useful rate (the first on a
// tie) and adaptive's row; ok is false without either.
func Best(rows []Row) (best, adaptive Row, ok bool) {
	found, fixed := false, false
	for _, r := range rows {
		switch {
		case r.Strategy == AdaptiveName:
			adaptive, found = r, true
		case !fixed || r.UsefulRate > best.UsefulRate:
			best, fixed = r, true
		}
	}
	return best, adaptive, found && fixed
}

// Verdict says how adaptive's useful rate compares with the best fixed
// strategy's, in one sentence.
func Verdict(rows []Row) string {
	best, a, ok := Best(rows)
	if !ok {
		return ""
	}
	d := a.UsefulRate - best.UsefulRate
	word := map[bool]string{true: "beats or matches", false: "trails"}[d >= 0]
	return fmt.Sprintf("adaptive (useful_rate %.4f) %s the best fixed strategy, %s (%.4f), by %+.4f (%+.1f points of %d frames).",
		a.UsefulRate, word, best.Strategy, best.UsefulRate, d, d*float64(a.Frames), a.Frames)
}

// WriteMarkdown writes the report as Markdown.
func WriteMarkdown(w io.Writer, rep Report) error {
	m := rep.Meta
	var b strings.Builder
	fmt.Fprintf(&b, "# Camera workload on %s\n\nGenerated by `%s` on %s (%s; load average %s before, %s after).\n\n",
		m.Trace, m.Command, m.Date, m.Machine, m.LoadBefore, m.LoadAfter)
	deploy := "the edge does not hold the full model (no edge-only point)"
	if m.EdgeFull {
		deploy = "the edge holds the full model (edge-only is a point)"
	}
	fmt.Fprintf(&b, "- Link: uplink %s.up (mean %.2f Mbit/s), downlink %s.down (mean %.2f Mbit/s), base RTT %.0f ms (half each way), drop-tail queue %s each way; each strategy has its own relay, its trace starting with the strategy's first frame.\n",
		m.Trace, m.UpMbps, m.Trace, m.DownMbps, m.RTTms, m.Queue)
	fmt.Fprintf(&b, "- Camera: %g fps for %.0f s, SLO %.0f ms, request timeout %.0f ms; frames cycle over %d test images in the order of seed %d.\n",
		m.FPS, m.DurationS, m.SLOms, m.TimeoutMS, m.Images, m.Seed)
	fmt.Fprintf(&b, "- Deployment: %s; edge compute x%g (docs/DEVICES.md). Engine: %s. Adaptive: edge/policy with %s.\n", deploy, m.Slowdown, m.Engine, m.Policy)
	fmt.Fprintf(&b, "- Measured once per frame image and point in a calibration (%.0f s): the edge's compute on this machine, the request bytes, the real cloud's reply and its reported stage times. Replayed in the run (%.0f s, all strategies at once): the compute, as waits (device: ended %.2f ms late on average, %.1f ms at most; cloud: %.2f / %.1f ms). Real in the run: QUIC through one bench/link relay per strategy (datagrams left the delay lines %.3f ms late on average, %.1f ms at most; %d queue drops). See docs/ADAPTIVE.md.\n\n",
		m.CalibrateS, m.RunS, m.ComputeLate.MeanMS, m.ComputeLate.MaxMS, m.CloudLate.MeanMS, m.CloudLate.MaxMS, m.RelayLate.MeanMS, m.RelayLate.MaxMS, m.QueueDrops)
	b.WriteString("useful = answered within the SLO with the correct top-1, over all frames; slo hit = answered within the SLO, over all frames; top-1 = correct over answered frames; latency from arrival to answer over answered frames (nearest rank); dropped = not started within the SLO; errors = started but not answered within the timeout.\n\n")
	b.WriteString("| strategy | frames | useful | slo hit | top-1 answered | answered | dropped | errors | p50 ms | p95 ms | p99 ms | bytes/frame | edge ms |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, r := range rep.Rows {
		name := r.Strategy
		if name == AdaptiveName {
			name = "**adaptive**"
		}
		fmt.Fprintf(&b, "| %s | %d | %.4f | %.4f | %.4f | %d | %d | %d | %.1f | %.1f | %.1f | %.0f | %.1f |\n",
			name, r.Frames, r.UsefulRate, r.SLOHitRate, r.Top1Answered, r.Answered, r.Dropped, r.Errors, r.P50, r.P95, r.P99, r.BytesPerFrame, r.EdgeMS)
	}
	for _, r := range rep.Rows {
		if r.Strategy != AdaptiveName {
			continue
		}
		fmt.Fprintf(&b, "\nAdaptive's frames by point (%d switches): ", r.Switches)
		var parts []string
		for _, p := range m.Points {
			if s, ok := r.Shares[p.Name]; ok {
				parts = append(parts, fmt.Sprintf("%s %.1f%%", p.Name, 100*s))
			}
		}
		b.WriteString(strings.Join(parts, ", ") + ".\n")
	}
	if v := Verdict(rep.Rows); v != "" {
		b.WriteString("\n**" + v + "**\n")
	}
	b.WriteString("\n## Points\n\nThe policy ranks the points by `accuracy` (manifest top-1; for lossy image codecs the top-1 measured in the calibration) and predicts their latency from the compute and bytes calibrated here.\n\n")
	b.WriteString("| point | kind | bundle | accuracy | edge ms (measured, unscaled) | cloud ms | bytes/request |\n| --- | --- | --- | ---: | ---: | ---: | ---: |\n")
	for _, p := range m.Points {
		fmt.Fprintf(&b, "| %s | %s | %s | %.4f | %.2f | %.2f | %.0f |\n", p.Name, p.Kind, p.Bundle, p.Accuracy, p.EdgeMS, p.CloudMS, p.Bytes)
	}
	fmt.Fprintf(&b, "\n![timeline](%s)\n", TimelineFile)
	_, err := io.WriteString(w, b.String())
	return err
}
