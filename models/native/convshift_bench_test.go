package native

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkShiftedLayouts times the shifted convolution of the shipped
// graphs' 3x3 shapes in both layouts, output channels as rows (wide) and
// as columns (chanCols), with bias and fused ReLU, and reports GFLOP/s;
// the cost rule's pick is marked. Run with -benchtime 2000x or so.
func BenchmarkShiftedLayouts(b *testing.B) {
	for _, tt := range []struct{ c, h, m, stride int }{
		{128, 6, 128, 1}, {64, 12, 128, 2}, {64, 12, 64, 1}, {48, 12, 48, 1}, {48, 24, 48, 1}, {32, 24, 128, 1},
	} {
		g := convGeom{n: 1, c: tt.c, h: tt.h, w: tt.h, m: tt.m, kh: 3, kw: 3, grp: 1, sh: tt.stride, sw: tt.stride,
			dh: 1, dw: 1, pt: 1, pl: 1, pb: 1, pr: 1}
		g.oh, g.ow = (tt.h-1)/tt.stride+1, (tt.h-1)/tt.stride+1
		rng := rand.New(rand.NewPCG(1, 2))
		w, bias := randSlice(rng, g.m*g.c*9), randSlice(rng, g.m)
		x := randSlice(rng, g.c*g.h*g.w)
		pick := chanCols(g, shiftedGeom(g).n)
		for _, threads := range []int{1, 2} {
			for _, cols := range []bool{false, true} {
				name := fmt.Sprintf("%d->%d_%dx%d_s%d/threads=%d/chanCols=%v", g.c, g.m, g.h, g.w, g.sh, threads, cols)
				if cols == pick {
					name += "(picked)"
				}
				b.Run(name, func(b *testing.B) {
					s := newShiftedCols(g, w, threads)
					if !cols {
						s = shiftedGeom(g)
						s.layoutWide(w, threads)
					}
					f := &fusable{act: &activation{op: uRelu}}
					run := s.kernel(operand{data: x}, bias, 0, f, threads)
					bufs := [][]float32{make([]float32, g.m*g.oh*g.ow)}
					sc := make([]float32, s.size)
					tm := newTeam(threads)
					defer tm.close()
					for b.Loop() {
						run(bufs, sc, tm)
					}
					flops := 2 * g.m * g.oh * g.ow * g.c * 9
					b.ReportMetric(float64(flops)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				})
			}
		}
	}
}
