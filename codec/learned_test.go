package codec

import (
	"errors"
	"math"
	"testing"

	"github.com/splitstream/splitstream/entropy"
)

// laplaceTable builds CDF rows the way EntropyBottleneck.update() does for
// channels with a discretized Laplacian prior of the given scales: the pmf
// over [-n, n] followed by the tail mass.
func laplaceTable(t testing.TB, scales []float64, n int) *entropy.Table {
	t.Helper()
	var cdfs [][]int32
	var lengths, offsets []int32
	for _, b := range scales {
		cdfOf := func(x float64) float64 {
			if x < 0 {
				return 0.5 * math.Exp(x/b)
			}
			return 1 - 0.5*math.Exp(-x/b)
		}
		pmf := make([]float32, 0, 2*n+2)
		var mass float64
		for s := -n; s <= n; s++ {
			p := cdfOf(float64(s)+0.5) - cdfOf(float64(s)-0.5)
			mass += p
			pmf = append(pmf, float32(p))
		}
		pmf = append(pmf, float32(1-mass))
		cdf, err := entropy.PMFToQuantizedCDF(pmf, 16)
		if err != nil {
			t.Fatal(err)
		}
		cdfs = append(cdfs, cdf)
		lengths = append(lengths, int32(len(cdf)))
		offsets = append(offsets, int32(-n))
	}
	tab, err := entropy.NewTable(cdfs, lengths, offsets)
	if err != nil {
		t.Fatal(err)
	}
	return tab
}

func newTestLearned(t testing.TB, channels int) *Learned {
	scales := make([]float64, channels)
	medians := make([]float32, channels)
	for c := range channels {
		scales[c] = 0.3 + float64(c%4)
		medians[c] = float32(c%3) * 0.25
	}
	l, err := NewLearned(laplaceTable(t, scales, 8), medians)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestLearnedRoundTrip(t *testing.T) {
	s := Shape{10, 6, 6}
	l := newTestLearned(t, s.C)
	y := latent(s, 7)
	y[5] = 40 // far outside the CDF's range: coded through the escape path
	data, err := l.Encode(nil, s, y)
	if err != nil {
		t.Fatal(err)
	}
	yhat, err := l.Decode(nil, data, s)
	if err != nil {
		t.Fatal(err)
	}
	plane := s.H * s.W
	for i := range y {
		m := l.medians[i/plane]
		want := float32(math.RoundToEven(float64(y[i]-m))) + m
		if yhat[i] != want {
			t.Fatalf("element %d: y=%v decoded %v, want %v", i, y[i], yhat[i], want)
		}
	}
	raw, _ := Raw{}.Encode(nil, s, y)
	t.Logf("learned: %d bytes, raw float32: %d bytes", len(data), len(raw))
	if len(data) >= len(raw)/4 {
		t.Errorf("learned codec used %d bytes, not well under raw's %d", len(data), len(raw))
	}
}

func TestLearnedRejects(t *testing.T) {
	s := Shape{4, 3, 3}
	l := newTestLearned(t, s.C)
	data, err := l.Encode(nil, s, latent(s, 1))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		data  []byte
		shape Shape
	}{
		{"truncated", data[:len(data)-4], s},
		{"trailing word", append(append([]byte{}, data...), 1, 2, 3, 4), s},
		{"state flipped", func() []byte { d := append([]byte{}, data...); d[0] ^= 1; return d }(), s},
		{"more symbols than coded", data, Shape{4, 3, 30}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := l.Decode(nil, tt.data, tt.shape); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("err = %v, want ErrCorrupt", err)
			}
		})
	}
	if _, err := l.Decode(nil, data, Shape{5, 3, 3}); err == nil {
		t.Fatal("decoded with the wrong channel count")
	}
	bad := latent(s, 1)
	bad[3] = float32(math.NaN())
	if _, err := l.Encode(nil, s, bad); err == nil {
		t.Fatal("encoded NaN")
	}
	if _, err := NewLearned(laplaceTable(t, []float64{1}, 4), []float32{0, 0}); err == nil {
		t.Fatal("accepted medians that do not match the table")
	}
}

// FuzzLearnedDecode feeds arbitrary bytes to the learned decoder.
func FuzzLearnedDecode(f *testing.F) {
	s := Shape{4, 3, 3}
	l := newTestLearned(f, s.C)
	data, err := l.Encode(nil, s, latent(s, 1))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Fuzz(func(t *testing.T, data []byte) {
		y, err := l.Decode(nil, data, s)
		if err != nil {
			return
		}
		re, err := l.Encode(nil, s, y)
		if err != nil {
			t.Fatalf("decoded latent does not re-encode: %v", err)
		}
		if string(re) != string(data) {
			t.Fatalf("decoded stream re-encodes differently")
		}
	})
}

func BenchmarkLearned(b *testing.B) {
	s := Shape{48, 12, 12}
	l := newTestLearned(b, s.C)
	y := latent(s, 2)
	data, err := l.Encode(nil, s, y)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("encode", func(b *testing.B) {
		for b.Loop() {
			if _, err := l.Encode(nil, s, y); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(data)), "bytes/image")
	})
	b.Run("decode", func(b *testing.B) {
		out := make([]float32, s.Len())
		for b.Loop() {
			if _, err := l.Decode(out, data, s); err != nil {
				b.Fatal(err)
			}
		}
	})
}
