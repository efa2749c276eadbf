package trace

import (
	"math"
	"reflect"
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	ms := time.Millisecond
	slo := 150 * ms
	label := func(img int) int { return img % 3 } // image i's class
	ans := func(img, top1 int, lat time.Duration, point int) Outcome {
		return Outcome{Frame: Frame{Image: img}, Status: Answered, Point: point, Latency: lat, Top1: top1, HasTop1: true, Bytes: 100 * (point + 1)}
	}
	drop := Outcome{Point: -1}
	fail := Outcome{Status: Failed, Point: 1, Bytes: 200}
	tests := []struct {
		name     string
		outcomes []Outcome
		adaptive bool
		want     Row
		shares   map[string]float64
	}{
		{
			name: "correct and in time, correct and late, wrong and in time",
			outcomes: []Outcome{
				ans(0, 0, 100*ms, 0), ans(1, 1, 200*ms, 0), ans(2, 0, 120*ms, 0), ans(4, 1, 150*ms, 0),
			},
			// useful: images 0 and 4 (150 ms is within the SLO); in time: 0, 2, 4.
			want: Row{Frames: 4, Answered: 4, UsefulRate: 0.5, SLOHitRate: 0.75, Top1Answered: 0.75, P50: 120, P95: 200, P99: 200, BytesPerFrame: 100},
		},
		{
			name:     "dropped and failed frames count in the useful rate's denominator, not in top-1",
			outcomes: []Outcome{ans(0, 0, 50*ms, 0), drop, fail, drop},
			want:     Row{Frames: 4, Answered: 1, Dropped: 2, Errors: 1, UsefulRate: 0.25, SLOHitRate: 0.25, Top1Answered: 1, P50: 50, P95: 50, P99: 50, BytesPerFrame: 150},
		},
		{
			name:     "an answer without a classification is not correct",
			outcomes: []Outcome{{Frame: Frame{Image: 0}, Status: Answered, Latency: 10 * ms, Top1: 0}},
			want:     Row{Frames: 1, Answered: 1, SLOHitRate: 1, P50: 10, P95: 10, P99: 10},
		},
		{
			name:     "nothing answered",
			outcomes: []Outcome{drop, drop},
			want:     Row{Frames: 2, Dropped: 2},
		},
		{
			name:     "adaptive: shares of the started frames and switches",
			outcomes: []Outcome{ans(0, 0, 10*ms, 0), ans(1, 1, 10*ms, 1), drop, ans(2, 2, 10*ms, 1), fail},
			adaptive: true,
			want:     Row{Frames: 5, Answered: 3, Dropped: 1, Errors: 1, UsefulRate: 0.6, SLOHitRate: 0.6, Top1Answered: 1, P50: 10, P95: 10, P99: 10, BytesPerFrame: 175, Switches: 1},
			shares:   map[string]float64{"a": 0.25, "b": 0.75},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Summarize("tr", "s", tt.outcomes, slo, label, []string{"a", "b"}, tt.adaptive)
			got.EdgeMS = 0
			shares := got.Shares
			got.Shares = nil
			tt.want.Trace, tt.want.Strategy = "tr", "s"
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
			if len(shares) != len(tt.shares) {
				t.Errorf("shares %v, want %v", shares, tt.shares)
			}
			for k, v := range tt.shares {
				if math.Abs(shares[k]-v) > 1e-12 {
					t.Errorf("share of %s: %v, want %v", k, shares[k], v)
				}
			}
		})
	}
}

func TestVerdict(t *testing.T) {
	rows := []Row{{Strategy: "a", UsefulRate: 0.5, Frames: 100}, {Strategy: "b", UsefulRate: 0.7, Frames: 100}, {Strategy: AdaptiveName, UsefulRate: 0.65, Frames: 100}}
	best, a, ok := Best(rows)
	if !ok || best.Strategy != "b" || a.Strategy != AdaptiveName {
		t.Fatalf("Best: %v %v %v", best.Strategy, a.Strategy, ok)
	}
	if v := Verdict(rows); v != "adaptive (useful_rate 0.6500) trails the best fixed strategy, b (0.7000), by -0.0500 (-5.0 points of 100 frames)." {
		t.Errorf("verdict %q", v)
	}
}
