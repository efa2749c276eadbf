package gemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// naive computes C (+)= A*B with a triple loop in float64.
func naive(m, n, k int, a []float32, lda int, b []float32, ldb int, transB bool, c []float32, ldc int, accumulate bool) {
	for i := range m {
		for j := range n {
			var s float64
			if accumulate {
				s = float64(c[i*ldc+j])
			}
			for p := range k {
				var bv float32
				if transB {
					bv = b[j*ldb+p]
				} else {
					bv = b[p*ldb+j]
				}
				s += float64(a[i*lda+p]) * float64(bv)
			}
			c[i*ldc+j] = float32(s)
		}
	}
}

func randSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = r.Float32()*2 - 1
	}
	return s
}

// checkClose compares got against want within a bound suited to float32
// summation of k products of values in [-1, 1].
func checkClose(t *testing.T, m, n, k int, got []float32, want []float32, ldc int) {
	t.Helper()
	tol := 1e-5 * float64(k+2)
	for i := range m {
		for j := range n {
			g, w := got[i*ldc+j], want[i*ldc+j]
			if !(math.Abs(float64(g-w)) <= tol) { // NaN fails too
				t.Fatalf("C[%d,%d] = %v, want %v (tol %g)", i, j, g, w, tol)
			}
		}
	}
}

type shape struct{ m, n, k int }

var testShapes = []shape{
	{1, 1, 1}, {1, 1, 0}, {3, 5, 0}, {1, 7, 3}, {7, 1, 3}, {5, 5, 5},
	{6, 16, 8}, {7, 17, 9}, {13, 33, 257}, {96, 100, 75}, {48, 37, 600},
	{24, 70, 192}, {150, 20, 31}, {2, 300, 2}, {31, 5000, 4}, {17, 9, 1100},
	{2, 2100, 1000}, // few rows of A, but B too large to read in place
	{201, 40, 64},   // split by rows, with A packed (odd m)
}

// kernels lists every kernel this CPU runs, the generic one first, so that
// tests run all paths and compare them.
func kernels() []*kernel {
	ks := runnableKernels()
	return append([]*kernel{ks[len(ks)-1]}, ks[:len(ks)-1]...)
}

// withKernel runs f with activeKernel set to k.
func withKernel(t *testing.T, k *kernel, f func(t *testing.T)) {
	saved := activeKernel
	activeKernel = k
	defer func() { activeKernel = saved }()
	t.Run(k.name, f)
}

func TestSgemm(t *testing.T) {
	for _, k := range kernels() {
		withKernel(t, k, testSgemm)
	}
}

func testSgemm(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, s := range testShapes {
		for _, transB := range []bool{false, true} {
			for _, acc := range []bool{false, true} {
				for _, threads := range []int{1, 2, 3} {
					packed := s.m%2 == 1 // alternate between PackA and plain A
					name := fmt.Sprintf("%dx%dx%d/transB=%v/acc=%v/threads=%d/packed=%v", s.m, s.n, s.k, transB, acc, threads, packed)
					t.Run(name, func(t *testing.T) {
						// Strides wider than the matrices exercise non-contiguous rows.
						lda, ldc := s.k+3, s.n+5
						ldb := s.n + 2
						bRows := s.k
						if transB {
							ldb, bRows = s.k+1, s.n
						}
						a := randSlice(r, max(s.m*lda, 1))
						b := randSlice(r, max(bRows*ldb, 1))
						c := randSlice(r, max(s.m*ldc, 1))
						want := append([]float32(nil), c...)
						naive(s.m, s.n, s.k, a, lda, b, ldb, transB, want, ldc, acc)
						var pa *PackedA
						if packed {
							pa = PackA(s.m, s.k, a, lda)
							if pa.Rows() != s.m || pa.Cols() != s.k {
								t.Fatalf("PackA: %dx%d, want %dx%d", pa.Rows(), pa.Cols(), s.m, s.k)
							}
						}
						switch {
						case packed && transB:
							SgemmPackedNT(pa, s.n, b, ldb, c, ldc, acc, threads)
						case packed:
							SgemmPacked(pa, s.n, b, ldb, c, ldc, acc, threads)
						case transB:
							SgemmNT(s.m, s.n, s.k, a, lda, b, ldb, c, ldc, acc, threads)
						default:
							Sgemm(s.m, s.n, s.k, a, lda, b, ldb, c, ldc, acc, threads)
						}
						checkClose(t, s.m, s.n, s.k, c, want, ldc)
						// Padding between rows of C must be untouched.
						for i := 0; i < s.m; i++ {
							for j := s.n; j < ldc && i*ldc+j < len(c); j++ {
								if c[i*ldc+j] != want[i*ldc+j] {
									t.Fatalf("padding C[%d,%d] changed", i, j)
								}
							}
						}
					})
				}
			}
		}
	}
}

func TestSgemmPanics(t *testing.T) {
	tests := []struct {
		name string
		f    func()
	}{
		{"negative m", func() { Sgemm(-1, 1, 1, nil, 1, nil, 1, nil, 1, false, 1) }},
		{"short a", func() { Sgemm(2, 2, 2, make([]float32, 3), 2, make([]float32, 4), 2, make([]float32, 4), 2, false, 1) }},
		{"short b", func() { Sgemm(2, 2, 2, make([]float32, 4), 2, make([]float32, 3), 2, make([]float32, 4), 2, false, 1) }},
		{"short c", func() { Sgemm(2, 2, 2, make([]float32, 4), 2, make([]float32, 4), 2, make([]float32, 3), 2, false, 1) }},
		{"small ldc", func() { Sgemm(2, 2, 2, make([]float32, 4), 2, make([]float32, 4), 2, make([]float32, 4), 1, false, 1) }},
		{"short bT", func() {
			SgemmNT(2, 3, 2, make([]float32, 4), 2, make([]float32, 5), 2, make([]float32, 6), 3, false, 1)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Fatal("no panic")
				}
			}()
			tt.f()
		})
	}
}

// TestMicroKernels runs each micro-kernel directly against a float64
// reference: depths around the unrolling, one and several tiles, B packed
// (ldb = nr) and in place (ldb > nr), a wide C stride and both accumulate
// modes.
func TestMicroKernels(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	type variant struct {
		name  string
		nr    int
		kern  *kernel
		micro func(kc, tiles int, ap, bp []float32, ldb int, c []float32, ldc int, acc bool)
	}
	var variants []variant
	for _, kern := range kernels() {
		variants = append(variants, variant{kern.name, kern.nr, kern, kern.micro})
		if kern.microHalf != nil {
			variants = append(variants, variant{kern.name + "-half", kern.nr / 2, kern, kern.microHalf})
		}
	}
	for _, v := range variants {
		mr, nr := v.kern.mr, v.nr
		for _, kc := range []int{1, 2, 3, 4, 5, 7, 8, 9, 33, 256} {
			for _, tiles := range []int{1, 3} {
				for _, ldb := range []int{nr, nr + 5, 2 * nr} {
					for _, acc := range []bool{false, true} {
						name := fmt.Sprintf("%s/kc=%d/tiles=%d/ldb=%d/acc=%v", v.name, kc, tiles, ldb, acc)
						t.Run(name, func(t *testing.T) {
							m := tiles * mr
							ap, bp := randSlice(r, kc*m), randSlice(r, (kc-1)*ldb+nr)
							ldc := nr + 3
							c := randSlice(r, m*ldc)
							want := append([]float32(nil), c...)
							for i := range m {
								pan, row := ap[i/mr*mr*kc:], i%mr
								for j := range nr {
									var s float64
									if acc {
										s = float64(want[i*ldc+j])
									}
									for p := range kc {
										s += float64(pan[p*mr+row]) * float64(bp[p*ldb+j])
									}
									want[i*ldc+j] = float32(s)
								}
							}
							v.micro(kc, tiles, ap, bp, ldb, c, ldc, acc)
							checkClose(t, m, ldc, kc, c, want, ldc)
						})
					}
				}
			}
		}
	}
}

// TestKernelsAgree compares whole products computed with each kernel and
// with the generic one.
func TestKernelsAgree(t *testing.T) {
	ks := kernels()
	if len(ks) == 1 {
		t.Skip("only the generic kernel runs here")
	}
	r := rand.New(rand.NewPCG(5, 6))
	const m, n, k = 37, 123, 300
	a, b := randSlice(r, m*k), randSlice(r, k*n)
	var outs [][]float32
	for _, kern := range ks {
		withKernel(t, kern, func(t *testing.T) {
			c := make([]float32, m*n)
			Sgemm(m, n, k, a, k, b, n, c, n, false, 2)
			outs = append(outs, c)
		})
	}
	for i, kern := range ks[1:] {
		t.Run(kern.name+"_vs_"+ks[0].name, func(t *testing.T) { checkClose(t, m, n, k, outs[i+1], outs[0], n) })
	}
}

func TestSgemmAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under -race")
	}
	r := rand.New(rand.NewPCG(7, 8))
	const m, n, k = 20, 300, 70
	a, b, c := randSlice(r, m*k), randSlice(r, k*n), make([]float32, m*n)
	pa := PackA(m, k, a, k)
	Sgemm(m, n, k, a, k, b, n, c, n, false, 1) // fill the pool
	if got := testing.AllocsPerRun(20, func() { Sgemm(m, n, k, a, k, b, n, c, n, false, 1) }); got != 0 {
		t.Errorf("Sgemm allocates %v times per call", got)
	}
	if got := testing.AllocsPerRun(20, func() { SgemmPacked(pa, n, b, n, c, n, true, 1) }); got != 0 {
		t.Errorf("SgemmPacked allocates %v times per call", got)
	}
	// A gathered A with a partial row tile (m = 20).
	aoff, koff := make([]int, m), NewOffsets(make([]int, k))
	pb := PackBT(k, n, b, k)
	if got := testing.AllocsPerRun(20, func() { SgemmGatherA(a, aoff, koff, pb, 0, n, c, n) }); got != 0 {
		t.Errorf("SgemmGatherA allocates %v times per call", got)
	}
}

// TestPackers checks kernel-specific packers against packA, packB and
// packBT, which they must match exactly, over depths and widths around
// their block sizes.
func TestPackers(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	type packer = func(kc, w, unit int, src []float32, ld int, dst []float32)
	// asB calls an A packer (rows first) with a B packer's arguments.
	asB := func(f func(mc, kc, mr int, a []float32, lda int, dst []float32)) packer {
		if f == nil {
			return nil
		}
		return func(kc, w, unit int, src []float32, ld int, dst []float32) { f(w, kc, unit, src, ld, dst) }
	}
	checked := 0
	for _, kern := range kernels() {
		for _, tc := range []struct {
			name       string
			unit       int
			fast, slow packer
		}{
			{"packA", kern.mr, asB(kern.packA), asB(packA)},
			{"packB", kern.nr, kern.packB, packB},
			{"packBT", kern.nr, kern.packBT, packBT},
		} {
			if tc.fast == nil {
				continue
			}
			u := tc.unit
			for _, kc := range []int{1, 7, 8, 9, 16, 75, 256} {
				for _, w := range []int{1, u/2 + 5, u - 1, u, u + 3, 5*u + 1} {
					checked++
					ld := max(kc, w) + 3
					src := randSlice(r, max(kc, w)*ld)
					size := kc * roundUp(w, u)
					want, got := make([]float32, size), randSlice(r, size)
					tc.slow(kc, w, u, src, ld, want)
					tc.fast(kc, w, u, src, ld, got)
					for i := range want {
						if got[i] != want[i] {
							t.Fatalf("%s %s kc=%d width=%d: dst[%d] = %v, want %v", kern.name, tc.name, kc, w, i, got[i], want[i])
						}
					}
				}
			}
		}
	}
	if checked == 0 {
		t.Skip("no kernel here has its own packer")
	}
}

// TestKernelTiles checks that every kernel's tile fits the scratch tile
// that edges go through.
func TestKernelTiles(t *testing.T) {
	for _, kern := range kernels() {
		if kern.mr*kern.nr > tileSz {
			t.Errorf("%s: %dx%d tile exceeds tileSz %d", kern.name, kern.mr, kern.nr, tileSz)
		}
	}
}

// TestSgemmPackedRows checks the gathered-rows product against the same
// rows copied into a plain B, on every kernel, with rows that overlap and
// repeat (as the taps of a convolution do).
func TestSgemmPackedRows(t *testing.T) {
	for _, kern := range kernels() {
		withKernel(t, kern, func(t *testing.T) {
			r := rand.New(rand.NewPCG(5, 6))
			for _, s := range testShapes {
				for _, acc := range []bool{false, true} {
					for _, threads := range []int{1, 2} {
						// slack: NaNs after the rows, which lets the
						// kernel read B's rows in place (microRows),
						// and must not reach C.
						for _, slack := range []int{0, 64} {
							name := fmt.Sprintf("%dx%dx%d/acc=%v/threads=%d/slack=%d", s.m, s.n, s.k, acc, threads, slack)
							t.Run(name, func(t *testing.T) {
								src := randSlice(r, s.n+3*s.k+7)
								off := make([]int, s.k)
								b := make([]float32, max(s.k*s.n, 1))
								for p := range off {
									off[p] = r.IntN(len(src) - s.n + 1)
									copy(b[p*s.n:], src[off[p]:off[p]+s.n])
								}
								for range slack {
									src = append(src, float32(math.NaN()))
								}
								ldc := s.n + 3
								a := randSlice(r, max(s.m*s.k, 1))
								c := randSlice(r, max(s.m*ldc, 1))
								want := append([]float32(nil), c...)
								naive(s.m, s.n, s.k, a, max(s.k, 1), b, s.n, false, want, ldc, acc)
								pa := PackA(s.m, s.k, a, max(s.k, 1))
								SgemmPackedRows(pa, s.n, src, off, c, ldc, acc, threads)
								checkClose(t, s.m, s.n, s.k, c, want, ldc)
							})
						}
					}
				}
			}
		})
	}
}

func TestSgemmPackedRowsPanics(t *testing.T) {
	pa := PackA(2, 3, make([]float32, 6), 3)
	c := make([]float32, 8)
	for _, tt := range []struct {
		name string
		off  []int
	}{
		{"too few offsets", []int{0, 1}},
		{"negative offset", []int{0, -1, 2}},
		{"row past the end", []int{0, 1, 7}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			SgemmPackedRows(pa, 4, make([]float32, 10), tt.off, c, 4, false, 1)
		})
	}
}

// TestSgemmGatherA checks the gathered-A product against naive on every
// kernel, with rows and columns that overlap and repeat (as a
// convolution's positions and taps do), partial tiles of both kinds and
// column ranges starting on a later panel.
func TestSgemmGatherA(t *testing.T) {
	for _, kern := range kernels() {
		withKernel(t, kern, func(t *testing.T) {
			r := rand.New(rand.NewPCG(7, 8))
			_, nr := TileShape()
			for _, s := range append(testShapes, shape{36, 128, 1152}, shape{40, 64, 300}) {
				for _, j0 := range []int{0, nr} {
					if j0 > s.n {
						continue
					}
					t.Run(fmt.Sprintf("%dx%dx%d/j0=%d", s.m, s.n, s.k, j0), func(t *testing.T) {
						src := randSlice(r, 3*s.m+5*s.k+9)
						aoff, koff := make([]int, s.m), make([]int, s.k)
						for i := range aoff {
							aoff[i] = r.IntN(3*s.m + 1)
						}
						for p := range koff {
							koff[p] = r.IntN(5*s.k + 9)
						}
						a := make([]float32, max(s.m*s.k, 1))
						for i, ro := range aoff {
							for p, ko := range koff {
								a[i*s.k+p] = src[ro+ko]
							}
						}
						bt := randSlice(r, max(s.n*s.k, 1))
						n := s.n - j0
						ldc := n + 3
						c := randSlice(r, max(s.m*ldc, 1))
						want := append([]float32(nil), c...)
						naive(s.m, n, s.k, a, max(s.k, 1), bt[j0*s.k:], max(s.k, 1), true, want, ldc, false)
						pb := PackBT(s.k, s.n, bt, max(s.k, 1))
						SgemmGatherA(src, aoff, NewOffsets(koff), pb, j0, s.n, c, ldc)
						checkClose(t, s.m, n, s.k, c, want, ldc)
					})
				}
			}
		})
	}
}

func TestSgemmGatherAPanics(t *testing.T) {
	_, nr := TileShape()
	pb := PackBT(3, nr+1, make([]float32, 3*(nr+1)), 3)
	c := make([]float32, 4*(nr+1))
	for _, tt := range []struct {
		name       string
		aoff, koff []int
		j0, j1     int
	}{
		{"too few column offsets", []int{0}, []int{0, 1}, 0, 1},
		{"negative offset", []int{0, 1}, []int{0, -2, 1}, 0, 1},
		{"offset past the end", []int{0, 5}, []int{0, 1, 5}, 0, 1},
		{"columns not on a panel", []int{0}, []int{0, 1, 2}, 1, 2},
		{"columns past the end", []int{0}, []int{0, 1, 2}, 0, nr + 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			SgemmGatherA(make([]float32, 10), tt.aoff, NewOffsets(tt.koff), pb, tt.j0, tt.j1, c, nr+1)
		})
	}
}
