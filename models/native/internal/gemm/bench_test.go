package gemm

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// benchShapes are the encoder's products at 224x224 (im2col convolutions
// and GDN 1x1s) and a square reference.
var benchShapes = []struct {
	name    string
	m, n, k int
}{
	{"conv1_96x12100x75", 96, 12100, 75},
	{"conv_48x3025x2400", 48, 3025, 2400},
	{"conv_24x3025x192", 24, 3025, 192},
	{"gdn_96x12100x96", 96, 12100, 96},
	{"gdn_48x3025x48", 48, 3025, 48},
	{"square_256", 256, 256, 256},
}

// naiveLoop is the plain i-p-j loop in float32 that Sgemm is measured against.
func naiveLoop(m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	for i := range m {
		ci := c[i*ldc : i*ldc+n]
		clear(ci)
		for p := range k {
			aip := a[i*lda+p]
			for j, v := range b[p*ldb : p*ldb+n] {
				ci[j] += aip * v
			}
		}
	}
}

func reportGFLOPS(b *testing.B, m, n, k int) {
	b.ReportMetric(2*float64(m)*float64(n)*float64(k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

// measure runs f b.N times and reports GFLOP/s for an m x n x k product
// over all runs and, as best-GFLOP/s, for the fastest one: on a machine
// shared with other work the best run shows what the code does when it has
// the core, the mean what it got.
func measure(b *testing.B, m, n, k int, f func()) {
	best := time.Duration(1 << 62)
	for b.Loop() {
		t0 := time.Now()
		f()
		best = min(best, time.Since(t0))
	}
	reportGFLOPS(b, m, n, k)
	b.ReportMetric(2*float64(m)*float64(n)*float64(k)/best.Seconds()/1e9, "best-GFLOP/s")
}

// BenchmarkSgemm reports GFLOP/s for the naive loop and for Sgemm and
// SgemmPacked on 1 and 2 threads, each shape in one run so that speedups
// are ratios of figures measured together.
func BenchmarkSgemm(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, s := range benchShapes {
		a, bm, c := randSlice(r, s.m*s.k), randSlice(r, s.k*s.n), make([]float32, s.m*s.n)
		b.Run(s.name+"/naive", func(b *testing.B) {
			measure(b, s.m, s.n, s.k, func() { naiveLoop(s.m, s.n, s.k, a, s.k, bm, s.n, c, s.n) })
		})
		pa := PackA(s.m, s.k, a, s.k)
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/%s/threads=%d", s.name, activeKernel.name, threads), func(b *testing.B) {
				measure(b, s.m, s.n, s.k, func() { Sgemm(s.m, s.n, s.k, a, s.k, bm, s.n, c, s.n, false, threads) })
			})
			b.Run(fmt.Sprintf("%s/%s-packedA/threads=%d", s.name, activeKernel.name, threads), func(b *testing.B) {
				measure(b, s.m, s.n, s.k, func() { SgemmPacked(pa, s.n, bm, s.n, c, s.n, false, threads) })
			})
		}
	}
}

// BenchmarkMicroKernel reports each micro-kernel's own GFLOP/s on four
// tiles with their panels in L1: the ceiling for the blocked loop.
func BenchmarkMicroKernel(b *testing.B) {
	r := rand.New(rand.NewPCG(2, 2))
	for _, kern := range kernels() {
		b.Run(kern.name, func(b *testing.B) {
			const kc, tiles = 256, 4
			m := tiles * kern.mr
			ap, bp := randSlice(r, kc*m), randSlice(r, kc*kern.nr)
			c := make([]float32, m*kern.nr)
			measure(b, m, kern.nr, kc, func() { kern.micro(kc, tiles, ap, bp, kern.nr, c, kern.nr, false) })
		})
		if kern.microGatherA == nil {
			continue
		}
		// The same tiles with A gathered as a 3x3 convolution on 6x6
		// maps reads it (zero-bordered 8x8 planes, 36 positions).
		b.Run(kern.name+"/gatherA", func(b *testing.B) {
			const kc, tiles = 256, 4
			m := tiles * kern.mr
			planes, bp := randSlice(r, (kc/9+1)*64+64), randSlice(r, kc*kern.nr)
			koff, aoff := make([]int, kc), make([]int, m)
			for p := range koff {
				koff[p] = p/9*64 + p%9/3*8 + p%3
			}
			for i := range aoff {
				aoff[i] = i%36/6*8 + i%6
			}
			c := make([]float32, m*kern.nr)
			measure(b, m, kern.nr, kc, func() {
				for t := range tiles {
					kern.microGatherA(kc, planes, aoff[t*kern.mr:], koff, bp, c[t*kern.mr*kern.nr:], kern.nr, false)
				}
			})
		})
	}
}

// BenchmarkBands multiplies the encoder shapes in column bands of B, as the
// engine's im2col convolution does, with A packed per call (Sgemm) and once
// beforehand (SgemmPacked): narrow bands make per-call packing of A costly.
func BenchmarkBands(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 3))
	for _, s := range benchShapes[:5] {
		a, c := randSlice(r, s.m*s.k), make([]float32, s.m*s.n)
		pa := PackA(s.m, s.k, a, s.k)
		for _, band := range []int{64, 256} {
			bm := randSlice(r, s.k*band)
			for _, packed := range []bool{false, true} {
				b.Run(fmt.Sprintf("%s/band=%d/packedA=%v", s.name, band, packed), func(b *testing.B) {
					measure(b, s.m, s.n, s.k, func() {
						for j0 := 0; j0 < s.n; j0 += band {
							nb := min(band, s.n-j0)
							if packed {
								SgemmPacked(pa, nb, bm, nb, c[j0:], s.n, false, 1)
							} else {
								Sgemm(s.m, nb, s.k, a, s.k, bm, nb, c[j0:], s.n, false, 1)
							}
						}
					})
				})
			}
		}
	}
}
