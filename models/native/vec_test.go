package native

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestVecMatchesGo checks the selected vector loops (AVX on amd64) against
// the portable Go bodies bit for bit, on lengths that exercise every
// unrolled block and the scalar tails.
func TestVecMatchesGo(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 100, 257} {
		x := make([]float32, n)
		pooled := make([]float32, n)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
			pooled[i] = rng.Float32() * 3
		}
		tests := []struct {
			name     string
			got, ref func(dst []float32)
		}{
			{"square", func(d []float32) { square(d, x) }, func(d []float32) { squareGo(d, x) }},
			{"gdnDiv", func(d []float32) { gdnDiv(d, x, 0.25) }, func(d []float32) { gdnDivGo(d, x, 0.25) }},
			{"gdnMul", func(d []float32) { gdnMul(d, x, 1e-3) }, func(d []float32) { gdnMulGo(d, x, 1e-3) }},
			{"gather2", func(d []float32) { gather2(d[:(n+1)/2], x) }, func(d []float32) { gather2Go(d[:(n+1)/2], x) }},
			{"lerp", func(d []float32) { lerp(d, x, pooled, 0.3) }, func(d []float32) { lerpGo(d, x, pooled, 0.3) }},
		}
		for _, tt := range tests {
			got := append(make([]float32, 0, n+1), pooled...)
			got = append(got, -7) // guard: must not be written
			ref := append([]float32{}, got...)
			tt.got(got[:n])
			tt.ref(ref[:n])
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(ref[i]) {
					t.Fatalf("%s n=%d: [%d] = %v, Go body gives %v", tt.name, n, i, got[i], ref[i])
				}
			}
		}
	}
}

// TestGather2 checks the stride-2 gather against its definition, with src
// exactly as short as allowed.
func TestGather2(t *testing.T) {
	for n := range 40 {
		src := make([]float32, max(0, 2*n-1))
		for i := range src {
			src[i] = float32(i)
		}
		dst := make([]float32, n)
		gather2(dst, src)
		for b, v := range dst {
			if v != float32(2*b) {
				t.Fatalf("n=%d: dst[%d] = %v, want %v", n, b, v, 2*b)
			}
		}
	}
}

// TestBiasRowsMatchesGo checks the selected biasRows against its Go body
// bit for bit, moving rows between strides and in place, with and without
// ReLU, and that nothing outside the rows' columns is written.
func TestBiasRowsMatchesGo(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, cols := range []int{1, 5, 6, 15, 16, 17, 24, 33, 100} {
		for _, rows := range []int{1, 3} {
			for _, relu := range []bool{false, true} {
				for _, inPlace := range []bool{false, true} {
					ss, ds := cols+3, cols+1
					if inPlace {
						ds = ss
					}
					src := make([]float32, rows*ss)
					for i := range src {
						src[i] = float32(rng.NormFloat64())
					}
					got, ref := make([]float32, rows*ds+1), make([]float32, rows*ds+1)
					for i := range got {
						got[i], ref[i] = -7, -7
					}
					gs, rs := src, src
					if inPlace {
						copy(got, src)
						copy(ref, src)
						gs, rs = got, ref
					}
					biasRows(got, ds, gs, ss, rows, cols, 0.3, relu)
					biasRowsGo(ref, ds, rs, ss, rows, cols, 0.3, relu)
					for i := range got {
						if math.Float32bits(got[i]) != math.Float32bits(ref[i]) {
							t.Fatalf("cols=%d rows=%d relu=%v inPlace=%v: [%d] = %v, Go body gives %v", cols, rows, relu, inPlace, i, got[i], ref[i])
						}
					}
				}
			}
		}
	}
}
