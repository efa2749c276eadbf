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
			if math.Abs(float64(g-w)) > tol {
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
}

// kernels lists the generic kernel and, when it differs, the one this CPU
// selects, so that tests run both paths.
func kernels() []*kernel {
	if activeKernel == genericKernel {
		return []*kernel{genericKernel}
	}
	return []*kernel{genericKernel, activeKernel}
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
						switch {
						case packed && transB:
							SgemmPackedNT(PackA(s.m, s.k, a, lda), s.n, b, ldb, c, ldc, acc, threads)
						case packed:
							SgemmPacked(PackA(s.m, s.k, a, lda), s.n, b, ldb, c, ldc, acc, threads)
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
	for _, kern := range kernels() {
		mr, nr := kern.mr, kern.nr
		for _, kc := range []int{1, 2, 3, 4, 5, 7, 8, 9, 33, 256} {
			for _, tiles := range []int{1, 3} {
				for _, ldb := range []int{nr, nr + 5} {
					for _, acc := range []bool{false, true} {
						name := fmt.Sprintf("%s/kc=%d/tiles=%d/ldb=%d/acc=%v", kern.name, kc, tiles, ldb, acc)
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
							kern.micro(kc, tiles, ap, bp, ldb, c, ldc, acc)
							checkClose(t, m, ldc, kc, c, want, ldc)
						})
					}
				}
			}
		}
	}
}

// TestKernelsAgree compares whole products computed with the selected
// kernel and with the generic one.
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
	checkClose(t, m, n, k, outs[1], outs[0], n)
}

func TestSgemmAllocs(t *testing.T) {
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
}
