package gemm

import (
	"fmt"
	"math/rand/v2"
	"testing"
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

// BenchmarkSgemm reports GFLOP/s for the naive loop and for Sgemm, SgemmNT
// and SgemmPacked on 1 and 2 threads, each shape in one run so that
// speedups are ratios of figures measured together.
func BenchmarkSgemm(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, s := range benchShapes {
		a, bm, c := randSlice(r, s.m*s.k), randSlice(r, s.k*s.n), make([]float32, s.m*s.n)
		b.Run(s.name+"/naive", func(b *testing.B) {
			for b.Loop() {
				naiveLoop(s.m, s.n, s.k, a, s.k, bm, s.n, c, s.n)
			}
			reportGFLOPS(b, s.m, s.n, s.k)
		})
		pa := PackA(s.m, s.k, a, s.k)
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/%s/threads=%d", s.name, activeKernel.name, threads), func(b *testing.B) {
				for b.Loop() {
					Sgemm(s.m, s.n, s.k, a, s.k, bm, s.n, c, s.n, false, threads)
				}
				reportGFLOPS(b, s.m, s.n, s.k)
			})
			b.Run(fmt.Sprintf("%s/%s-packedA/threads=%d", s.name, activeKernel.name, threads), func(b *testing.B) {
				for b.Loop() {
					SgemmPacked(pa, s.n, bm, s.n, c, s.n, false, threads)
				}
				reportGFLOPS(b, s.m, s.n, s.k)
			})
		}
	}
}

// BenchmarkMicroKernel reports the micro-kernel's own GFLOP/s on panels in
// L1, the ceiling for the blocked loop around it.
func BenchmarkMicroKernel(b *testing.B) {
	r := rand.New(rand.NewPCG(2, 2))
	for _, kern := range kernels() {
		b.Run(kern.name, func(b *testing.B) {
			const kc = 256
			ap, bp := randSlice(r, kc*kern.mr), randSlice(r, kc*kern.nr)
			c := make([]float32, kern.mr*kern.nr)
			for b.Loop() {
				kern.micro(kc, 1, ap, bp, kern.nr, c, kern.nr, false)
			}
			reportGFLOPS(b, kern.mr, kern.nr, kc)
		})
	}
}
