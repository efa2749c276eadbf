package sweep

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/splitstream/splitstream/bench/netns"
	"github.com/splitstream/splitstream/bench/report"
	"github.com/splitstream/splitstream/bundle"
)

func sweepOnce(t *testing.T, f *fixture, seed uint64, links []Link) []report.Row {
	t.Helper()
	st, err := Plan(f.full, f.split, []*bundle.Bundle{f.split}, []int{50}, []int{50})
	if err != nil {
		t.Fatal(err)
	}
	var progress strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rows, err := Run(ctx, Options{Strategies: st, Links: links, Images: 8, Timed: 3, Seed: seed, Open: f.open, Progress: &progress})
	if err != nil {
		t.Fatal(err)
	}
	if want := len(st) * len(links); len(rows) != want {
		t.Fatalf("%d rows, want %d", len(rows), want)
	}
	if !strings.Contains(progress.String(), "timed") {
		t.Errorf("no progress lines:\n%s", progress.String())
	}
	return rows
}

func TestSweep(t *testing.T) {
	f := newFixture(t, 10)
	l5, err := RateLink(5, 20*time.Millisecond, 0)
	if err != nil {
		t.Fatal(err)
	}
	rows := sweepOnce(t, f, 1, []Link{l5})
	by := map[string]report.Row{}
	for _, r := range rows {
		by[r.Strategy] = r
		if r.Errors != 0 || r.Mismatches != 0 || r.TimedImages != 3 || r.AccuracyImages != 8 {
			t.Errorf("%s: errors %d, mismatches %d, timed %d, accuracy images %d", r.Strategy, r.Errors, r.Mismatches, r.TimedImages, r.AccuracyImages)
		}
		if r.Kind == KindEdge {
			if r.BytesPerImage != 0 || r.RateMbps != 5 {
				t.Errorf("edge-only: %.0f bytes per image, rate %g", r.BytesPerImage, r.RateMbps)
			}
			continue
		}
		if r.BytesPerImage <= 0 {
			t.Errorf("%s: %.1f bytes per image", r.Strategy, r.BytesPerImage)
		}
		// Every request crosses the link: at least the round trip and the
		// request's own serialisation.
		if min := r.RTTms + r.Transfer; r.P50 < min {
			t.Errorf("%s: p50 %.2f ms below RTT + transfer %.2f ms", r.Strategy, r.P50, min)
		}
	}
	// PNG is lossless: the full model sees the same pixels in the cloud as
	// on the edge.
	if e, p := by["edge-only"], by["png"]; e.Top1 != p.Top1 || e.MIoU != p.MIoU || e.MAP50 != p.MAP50 {
		t.Errorf("edge-only %+v and png %+v disagree", e, p)
	}
	// The raw latent is what the learned codec quantizes: raw-f32 sends
	// 4 bytes per element.
	if got, want := by["raw-f32"].BytesPerImage, float64(4*f.split.Shape().Len()); got != want {
		t.Errorf("raw-f32: %.1f bytes per image, want %.0f", got, want)
	}
}

// The same seed gives the same bytes per image and accuracy; another seed
// takes other images.
func TestSweepDeterministic(t *testing.T) {
	f := newFixture(t, 40)
	l, err := ParseLink("rate=20Mbit,delay=1ms")
	if err != nil {
		t.Fatal(err)
	}
	key := func(rows []report.Row) []report.Row {
		out := make([]report.Row, len(rows))
		for i, r := range rows {
			out[i] = report.Row{Strategy: r.Strategy, Top1: r.Top1, MAP50: r.MAP50, MIoU: r.MIoU, BytesPerImage: r.BytesPerImage}
		}
		return out
	}
	a, b := key(sweepOnce(t, f, 3, []Link{l})), key(sweepOnce(t, f, 3, []Link{l}))
	for i := range a {
		if a[i] != b[i] {
			t.Errorf("same seed, different results:\n%+v\n%+v", a[i], b[i])
		}
	}
	c := key(sweepOnce(t, f, 4, []Link{l}))
	same := true
	for i := range a {
		same = same && a[i] == c[i]
	}
	if same {
		t.Error("seeds 3 and 4 gave identical rows: the seed does not pick the images")
	}
}

func TestPlanNames(t *testing.T) {
	f := newFixture(t, 1)
	st, err := Plan(f.full, f.split, []*bundle.Bundle{f.split}, []int{30, 90}, []int{75})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range st {
		names = append(names, s.Name)
	}
	want := "edge-only png jpeg-q30 jpeg-q90 webp-q75 raw-f32 int8-zstd learned-tb-split"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("strategies %q, want %q", got, want)
	}
	if _, err := Plan(f.split, nil, nil, nil, nil); err == nil {
		t.Error("a split bundle as the full bundle was accepted")
	}
	if _, err := Plan(nil, nil, nil, nil, nil); err == nil {
		t.Error("no strategies was accepted")
	}
}

// The namespace mode: the edge's QUIC socket is made on a thread in the
// edge namespace, the cloud serves in the cloud namespace.
func TestSweepNetns(t *testing.T) {
	if err := netns.Available(); err != nil {
		t.Skip(err)
	}
	f := newFixture(t, 6)
	l, err := RateLink(10, 10*time.Millisecond, 0)
	if err != nil {
		t.Fatal(err)
	}
	st, err := Plan(f.full, nil, []*bundle.Bundle{f.split}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rows, err := Run(ctx, Options{Strategies: st, Links: []Link{l}, Images: 4, Timed: 3, Open: f.open, NetNS: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.Errors != 0 || r.TimedImages != 3 {
			t.Errorf("%s: %d errors, %d timed", r.Strategy, r.Errors, r.TimedImages)
		}
		if r.Kind != KindEdge && r.P50 < r.RTTms {
			t.Errorf("%s: p50 %.2f ms below the RTT: the request did not cross the namespaces' link", r.Strategy, r.P50)
		}
	}
}

// A rate link's name is a spec that bench/link reads back as the same link.
func TestRateLinkName(t *testing.T) {
	for _, tt := range []struct {
		mbps float64
		rtt  time.Duration
		loss float64
	}{{0.5, 50 * time.Millisecond, 0}, {20, 50 * time.Millisecond, 0.01}, {1000, time.Millisecond, 0}} {
		l, err := RateLink(tt.mbps, tt.rtt, tt.loss)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseLink(l.Name)
		if err != nil || back.Config != l.Config {
			t.Errorf("%q reads back as %+v (%v), want %+v", l.Name, back.Config, err, l.Config)
		}
		if l.Config.RTT() != tt.rtt || l.Config.Up.RateBps != tt.mbps*1e6 {
			t.Errorf("%q: RTT %v, rate %v", l.Name, l.Config.RTT(), l.Config.Up.RateBps)
		}
	}
}
