package learn

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/splitstream/splitstream/codec"
)

// denseFilter is the filters' definition, computed directly: the ReLU of
// every filter's dot product with every zero-padded patch.
func denseFilter(e *extractor, y []float32) []float32 {
	s, k, nf := e.shape, e.f.Kernel, e.f.Filters
	half := k / 2
	plane := s.H * s.W
	out := make([]float32, nf*plane)
	for m := range nf {
		for r := range s.H {
			for c := range s.W {
				var acc float64
				for ch := range s.C {
					for dy := -half; dy <= half; dy++ {
						for dx := -half; dx <= half; dx++ {
							yy, xx := r+dy, c+dx
							if yy < 0 || yy >= s.H || xx < 0 || xx >= s.W {
								continue
							}
							acc += float64(e.tap(ch, dy, dx)[m]) * float64(y[ch*plane+yy*s.W+xx])
						}
					}
				}
				out[m*plane+r*s.W+c] = float32(max(acc, 0))
			}
		}
	}
	return out
}

// TestFilterMatchesDense checks the sparse computation of the random
// filters (background plus differing elements) against their definition,
// on latents that are mostly one value per channel, as quantised latents
// are, and on dense ones.
func TestFilterMatchesDense(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct {
		s      codec.Shape
		kernel int
		sparse bool
	}{
		{codec.Shape{C: 3, H: 7, W: 5}, 3, true},
		{codec.Shape{C: 3, H: 7, W: 5}, 3, false},
		{codec.Shape{C: 2, H: 4, W: 9}, 5, true},
		{codec.Shape{C: 2, H: 2, W: 3}, 7, false},
	} {
		e, err := newExtractor(Features{Stats: Mean, Grid: 1, Filters: 6, Kernel: tc.kernel, Seed: 9}, tc.s, 1000)
		if err != nil {
			t.Fatal(err)
		}
		y := make([]float32, tc.s.Len())
		plane := tc.s.H * tc.s.W
		for i := range y {
			bg := float32(i/plane) - 0.75 // one value per channel
			if !tc.sparse || rng.IntN(5) == 0 {
				y[i] = bg + float32(rng.IntN(7)-3)
			} else {
				y[i] = bg
			}
		}
		e.filter(y)
		want := denseFilter(e, y)
		for i := range want {
			if math.Abs(float64(e.resp[i]-want[i])) > 1e-4 {
				t.Fatalf("%+v: response %d is %v, want %v", tc, i, e.resp[i], want[i])
			}
		}
	}
}
