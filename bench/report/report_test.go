package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestOverhead(t *testing.T) {
	tests := []struct {
		name string
		s    Sample
		rate float64
		rtt  time.Duration
		want float64
	}{
		// 10 000 bytes at 1 Mbit/s take 80 ms.
		{"1 Mbit/s", Sample{Total: 200, Edge: 20, Cloud: 30, ReqBytes: 10000}, 1e6, 50 * time.Millisecond, 200 - 20 - 80 - 50 - 30},
		{"no limit", Sample{Total: 60, Edge: 5, Cloud: 5, ReqBytes: 1 << 20}, 0, 40 * time.Millisecond, 10},
		{"edge only", Sample{Total: 12.5, Edge: 12}, 0, 0, 0.5},
	}
	for _, tt := range tests {
		if got := Overhead(tt.s, tt.rate, tt.rtt); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("%s: overhead %v, want %v", tt.name, got, tt.want)
		}
		// The slowdown scales the edge compute and leaves the overhead.
		s := Slow(tt.s, 3)
		if s.Edge != 3*tt.s.Edge || math.Abs(s.Total-(tt.s.Total+2*tt.s.Edge)) > 1e-9 {
			t.Errorf("%s: slowed %+v", tt.name, s)
		}
		if got := Overhead(s, tt.rate, tt.rtt); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("%s: overhead after slowdown %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestFillPercentiles(t *testing.T) {
	var ss []Sample
	for i := 1; i <= 20; i++ {
		ss = append(ss, Sample{Total: float64(100 + i), Edge: 10, Network: 60, Cloud: 5, ReqBytes: 1250, ReplyBytes: 500})
	}
	var r Row
	r.Fill(ss, 1e6, 2e6, 50*time.Millisecond, 2)
	// Totals 111..130 after the slowdown adds 10 to each: p50 is the 10th,
	// p95 the 19th (nearest rank).
	if r.P50 != 120 || r.P95 != 129 || r.Edge != 20 || r.Transfer != 10 || r.ReplyBytes != 500 || r.ReplyTransfer != 2 || r.TimedImages != 20 || r.EdgeSlowdown != 2 {
		t.Errorf("row %+v", r)
	}
	if want := 120.0 - 20 - 10 - 50 - 5; r.Overhead != want {
		t.Errorf("overhead %v, want %v", r.Overhead, want)
	}
	var empty Row
	empty.Fill(nil, 1e6, 1e6, 0, 1)
	if empty.P50 != 0 || empty.TimedImages != 0 {
		t.Errorf("empty row %+v", empty)
	}
}

func sampleReport() Report {
	mk := func(s, kind string, rate, top1, bytes, p50 float64) Row {
		return Row{Strategy: s, Kind: kind, Link: fmt.Sprintf("rate=%gMbit", rate), RateMbps: rate, RTTms: 50,
			Top1: top1, BytesPerImage: bytes, P50: p50, P95: p50 * 1.2, TimedImages: 10, EdgeSlowdown: 1}
	}
	var rows []Row
	for _, rate := range []float64{1, 20} {
		rows = append(rows,
			mk("edge-only", "edge", rate, 0.80, 0, 300),
			mk("png", "input", rate, 0.80, 20000, 60+160000/(rate*1000)),
			mk("jpeg-q50", "input", rate, 0.70, 3000, 60+24000/(rate*1000)),
			mk("learned-b1", "learned", rate, 0.75, 500, 70+4000/(rate*1000)),
			mk("learned-b9", "learned", rate, 0.90, 400, 70+3200/(rate*1000)),
		)
	}
	return Report{Meta: Meta{Command: "splitstream bench links", Date: "2026-11-29T09:00:00Z", Mode: "relay", Engine: "native", Images: 100, Timed: 10, Slowdown: 1}, Rows: rows}
}

func TestClosing(t *testing.T) {
	c := Closing(sampleReport().Rows)
	// At 1 Mbit/s learned-b1 (0.75) is matched by png only (jpeg is below):
	// png p50 = 60 + 160 = 220 against 74: faster.
	for _, want := range []string{
		"1 Mbit/s, RTT 50 ms: learned-b1 (top-1 0.7500, 500 B) p50 74.0 ms; png (top-1 0.8000, 20000 B) p50 220.0 ms: the learned codec is 146.0 ms faster",
		"learned-b9 (top-1 0.9000, 400 B) p50 73.2 ms; no input-offload strategy reaches its top-1",
		"20 Mbit/s, RTT 50 ms: learned-b1 (top-1 0.7500, 500 B) p50 70.2 ms; png (top-1 0.8000, 20000 B) p50 68.0 ms: the learned codec is 2.2 ms slower",
	} {
		if !strings.Contains(c, want) {
			t.Errorf("closing note lacks %q:\n%s", want, c)
		}
	}
}

func TestWriteFiles(t *testing.T) {
	dir := t.TempDir()
	rep := sampleReport()
	rep.Meta.Slowdown = 4
	paths, err := WriteFiles(dir, rep)
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 5 {
		t.Errorf("wrote %v", paths)
	}
	// CSV: a header and one record per row, strategy first.
	f, _ := os.Open(filepath.Join(dir, "report.csv"))
	recs, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(recs) != 1+len(rep.Rows) || recs[1][0] != "edge-only" || recs[0][15] != "p50_ms" {
		t.Errorf("csv: %v, %d records, %v", err, len(recs), recs[:2])
	}
	// JSON: meta and rows read back.
	var back Report
	data, _ := os.ReadFile(filepath.Join(dir, "report.json"))
	if err := json.Unmarshal(data, &back); err != nil || len(back.Rows) != len(rep.Rows) || back.Rows[3] != rep.Rows[3] {
		t.Errorf("json: %v", err)
	}
	// Markdown: the slowdown is labelled, the plots linked.
	md, _ := os.ReadFile(filepath.Join(dir, "report.md"))
	for _, want := range []string{"multiplied by 4.00", "](" + PlotLatencyFile + ")", "| learned-b9 | 0.9000 |", "## Learned codec against input offload"} {
		if !bytes.Contains(md, []byte(want)) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	for _, p := range []string{PlotLatencyFile, PlotAccuracyFile} {
		f, err := os.Open(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil || img.Bounds().Dx() < 400 {
			t.Errorf("%s: %v", p, err)
		}
	}
}

func TestWriteJSONKeys(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteJSON(&buf, sampleReport().Rows[:1]); err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rows); err != nil || len(rows) != 1 {
		t.Fatal(err)
	}
	for _, k := range []string{"strategy", "rate_mbps", "rtt_ms", "top1", "bytes_per_image", "p50_ms", "p95_ms", "overhead_ms"} {
		if _, ok := rows[0][k]; !ok {
			t.Errorf("no key %q", k)
		}
	}
	buf.Reset()
	WriteJSON(&buf, nil)
	if strings.TrimSpace(buf.String()) != "[]" {
		t.Errorf("no rows: %q", buf.String())
	}
}

func TestTicks125(t *testing.T) {
	var labels []string
	for _, tk := range (ticks125{}).Ticks(0.4, 60) {
		if tk.Label != "" {
			labels = append(labels, tk.Label)
		}
	}
	if got, want := strings.Join(labels, " "), "0.5 1 2 5 10 20 50"; got != want {
		t.Errorf("labels %q, want %q", got, want)
	}
	if n := len((ticks125{}).Ticks(0, 10)); n != 0 {
		t.Errorf("%d ticks on an axis from 0", n)
	}
}
