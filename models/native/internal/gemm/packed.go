package gemm

import "fmt"

// PackedA is a matrix A packed once for repeated products A*B, such as a
// convolution's weights (A = out channels x in channels*kh*kw, B = im2col of
// the input). Packing is the part of Sgemm that depends only on A, so
// SgemmPacked skips it. A PackedA is read-only and safe for concurrent use.
type PackedA struct {
	m, k int
	kern *kernel
	data []float32
}

// PackA packs the m x k matrix a (row stride lda) for SgemmPacked. It panics
// on invalid dimensions or a short slice.
func PackA(m, k int, a []float32, lda int) *PackedA {
	if m < 0 || k < 0 {
		panic(fmt.Sprintf("gemm.PackA: negative dimension m=%d k=%d", m, k))
	}
	checkMatrix("PackA", "a", a, m, k, lda)
	kern := activeKernel
	mpad := roundUp(m, kern.mr)
	p := &PackedA{m: m, k: k, kern: kern, data: make([]float32, mpad*k)}
	if m == 0 || k == 0 {
		return p
	}
	kcb := kcSplit(k)
	for pc := 0; pc < k; pc += kcb {
		kc := min(kcb, k-pc)
		packAFor(kern, m, kc, a[pc:], lda, p.data[pc*mpad:])
	}
	return p
}

// Rows returns m, the number of rows of the packed matrix.
func (p *PackedA) Rows() int { return p.m }

// Cols returns k, the number of columns of the packed matrix.
func (p *PackedA) Cols() int { return p.k }

// block returns the packed rows from ic on of the rank-kc block starting at
// column pc.
func (p *PackedA) block(pc, ic int) []float32 {
	mpad := roundUp(p.m, p.kern.mr)
	kc := min(kcSplit(p.k), p.k-pc)
	return p.data[pc*mpad+ic*kc:]
}

// SgemmPacked is Sgemm with A packed by PackA: C = A*B (+ C if accumulate),
// B k x n (row stride ldb), C m x n (row stride ldc), where m and k are
// pa's dimensions.
func SgemmPacked(pa *PackedA, n int, b []float32, ldb int, c []float32, ldc int, accumulate bool, threads int) {
	checkArgs("SgemmPacked", pa.m, n, pa.k, nil, 0, b, ldb, false, c, ldc)
	run(pa.m, n, pa.k, aSource{packed: pa}, b, ldb, bRows{}, false, c, ldc, accumulate, threads)
}

// SgemmPackedNT is SgemmPacked with B given transposed (n x k, row stride ldb).
func SgemmPackedNT(pa *PackedA, n int, b []float32, ldb int, c []float32, ldc int, accumulate bool, threads int) {
	checkArgs("SgemmPackedNT", pa.m, n, pa.k, nil, 0, b, ldb, true, c, ldc)
	run(pa.m, n, pa.k, aSource{packed: pa}, b, ldb, bRows{}, true, c, ldc, accumulate, threads)
}

// SgemmPackedRows is SgemmPacked with the rows of B gathered by offset:
// row p of B is b[boff[p] : boff[p]+n], len(boff) = k. A convolution
// written as a sum over kernel taps of shifted views of its input is then
// one product of depth channels*taps (an implicit im2col), rather than one
// shallow product per tap, each reading and writing all of C.
func SgemmPackedRows(pa *PackedA, n int, b []float32, boff []int, c []float32, ldc int, accumulate bool, threads int) {
	if len(boff) != pa.k {
		panic(fmt.Sprintf("gemm.SgemmPackedRows: %d row offsets for depth %d", len(boff), pa.k))
	}
	rows := bRows{off: boff}
	for p, o := range boff {
		if o < 0 || o+n > len(b) {
			panic(fmt.Sprintf("gemm.SgemmPackedRows: row %d at offset %d with %d columns overruns len(b)=%d", p, o, n, len(b)))
		}
		rows.max = max(rows.max, o)
	}
	if n < 0 {
		panic(fmt.Sprintf("gemm.SgemmPackedRows: negative dimension n=%d", n))
	}
	checkMatrix("SgemmPackedRows", "c", c, pa.m, n, ldc)
	run(pa.m, n, pa.k, aSource{packed: pa}, b, 0, rows, false, c, ldc, accumulate, threads)
}

// TileShape returns the rows and columns of the micro-tile of the kernel
// this CPU runs: products whose m and n are multiples of them compute no
// padding, and a caller splitting a product among threads should cut it
// on those multiples.
func TileShape() (mr, nr int) { return activeKernel.mr, activeKernel.nr }
