package trace

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/splitstream/splitstream/bench/link"
)

// syntheticTrace delivers one opportunity per millisecond (12 Mbit/s)
// except in [600, 900) ms, an outage; it repeats every second.
func syntheticTrace(t *testing.T, name string) *link.Trace {
	var b strings.Builder
	for ms := 1; ms <= 1000; ms++ {
		if ms < 600 || ms >= 900 {
			fmt.Fprintln(&b, ms)
		}
	}
	tr, err := link.ParseTrace(strings.NewReader(b.String()), name, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// TestBenchEndToEnd runs the whole bench for a few seconds on the shipped
// bundles over a synthetic trace and checks the rows' invariants. The edge
// is slowed down 20 times, so that edge-only cannot keep up with the
// camera and adaptive offloads.
func TestBenchEndToEnd(t *testing.T) {
	zoo := filepath.Join("..", "..", "models", "zoo")
	full, split := filepath.Join(zoo, "fmnist-teacher"), filepath.Join(zoo, "fmnist-es-b0.3")
	for _, d := range []string{full, split} {
		if _, err := os.Stat(filepath.Join(d, "manifest.json")); err != nil {
			t.Skipf("shipped bundle %s not here: %v", d, err)
		}
	}
	strategies, _, err := Strategies([]string{full, split}, "50", "", true)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range strategies {
		names = append(names, s.Name)
	}
	if want := "edge-only,png,jpeg-q50,learned-fmnist-es-b0.3"; strings.Join(names, ",") != want {
		t.Fatalf("strategies %v, want %s", names, want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	o := Options{Strategies: strategies, Up: syntheticTrace(t, "synthetic.up"), Down: syntheticTrace(t, "synthetic.down"),
		RTT: 20 * time.Millisecond, Queue: link.Queue{Packets: 100}, SLO: 150 * time.Millisecond, FPS: 10,
		Duration: 3 * time.Second, Images: 10, Seed: 1, Slowdown: 20}
	run, err := Bench(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if run.Trace != "synthetic" {
		t.Errorf("trace name %q", run.Trace)
	}
	if len(run.Rows) != len(strategies)+1 || run.Rows[len(run.Rows)-1].Strategy != AdaptiveName {
		t.Fatalf("%d rows, the last %q; want one per strategy and adaptive last", len(run.Rows), run.Rows[len(run.Rows)-1].Strategy)
	}
	for i, r := range run.Rows {
		if r.Frames != 30 || r.Answered+r.Dropped+r.Errors != r.Frames {
			t.Errorf("%s: %d frames = %d answered + %d dropped + %d errors; want 30 in all", r.Strategy, r.Frames, r.Answered, r.Dropped, r.Errors)
		}
		if !(0 <= r.UsefulRate && r.UsefulRate <= r.SLOHitRate && r.SLOHitRate <= float64(r.Answered)/float64(r.Frames)+1e-12) {
			t.Errorf("%s: useful %v, slo hit %v, answered %d of %d", r.Strategy, r.UsefulRate, r.SLOHitRate, r.Answered, r.Frames)
		}
		if r.Answered == 0 || !(0 < r.P50 && r.P50 <= r.P95 && r.P95 <= r.P99) || r.Top1Answered < 0 || r.Top1Answered > 1 {
			t.Errorf("%s: %d answered, p50 %v p95 %v p99 %v, top-1 %v", r.Strategy, r.Answered, r.P50, r.P95, r.P99, r.Top1Answered)
		}
		local := r.Strategy == "edge-only" || (r.Strategy == AdaptiveName && r.Shares["edge-only"] == 1)
		if local != (r.BytesPerFrame == 0) {
			t.Errorf("%s: %v bytes per frame", r.Strategy, r.BytesPerFrame)
		}
		// Every answer is the calibrated one for its frame and point:
		// the replay cloud matched each request to its calibration.
		for _, oc := range run.Outcomes[i] {
			if oc.Status == Answered && oc.Top1 != run.Calibration.Work[oc.Point][oc.Image].Top1 {
				t.Errorf("%s: frame %d answered %d, calibrated %d", r.Strategy, oc.Seq, oc.Top1, run.Calibration.Work[oc.Point][oc.Image].Top1)
			}
		}
	}
	a := run.Rows[len(run.Rows)-1]
	sum := 0.0
	for _, s := range a.Shares {
		sum += s
	}
	if math.Abs(sum-1) > 1e-9 {
		t.Errorf("adaptive's shares %v sum to %v", a.Shares, sum)
	}

	var js bytes.Buffer
	if err := WriteJSON(&js, run.Rows); err != nil {
		t.Fatal(err)
	}
	var decoded []map[string]any
	if err := json.Unmarshal(js.Bytes(), &decoded); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"trace", "strategy", "frames", "useful_rate", "slo_hit_rate", "top1_answered", "p50_ms", "p95_ms", "p99_ms", "dropped", "errors"} {
		if _, ok := decoded[0][k]; !ok {
			t.Errorf("JSON rows lack %q", k)
		}
	}
	dir := t.TempDir()
	written, err := run.WriteFiles(dir, run.NewReport(Meta{Command: "test"}))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range written {
		if st, err := os.Stat(p); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", p, err)
		}
	}
	md, _ := os.ReadFile(filepath.Join(dir, MarkdownFile))
	if !strings.Contains(string(md), Verdict(run.Rows)) {
		t.Errorf("report.md lacks the verdict %q", Verdict(run.Rows))
	}
	t.Logf("calibration %v, run %v; %s", run.Calibration.Took, run.Took, Verdict(run.Rows))
}
