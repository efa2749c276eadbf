package gemm

import "fmt"

// PackedB is a matrix B (k x n) packed once for repeated products A*B in
// which B is the constant operand, such as a convolution's transposed
// weights when the output channels are the product's columns. It holds
// B as panels of the active kernel's nr columns, each panel k x nr
// contiguous (row p of panel q at data[(q*k+p)*nr:]), zero past column
// n. A PackedB is read-only and safe for concurrent use.
type PackedB struct {
	k, n int
	kern *kernel
	data []float32
}

// PackBT packs B from its transpose: bt holds B^T (n x k, row stride
// ldb), as a convolution's weights are stored (out channels x in
// channels*kh*kw). It panics on invalid dimensions or a short slice.
func PackBT(k, n int, bt []float32, ldb int) *PackedB {
	if k < 0 || n < 0 {
		panic(fmt.Sprintf("gemm.PackBT: negative dimension k=%d n=%d", k, n))
	}
	checkMatrix("PackBT", "bt", bt, n, k, ldb)
	kern := activeKernel
	nr := kern.nr
	p := &PackedB{k: k, n: n, kern: kern, data: make([]float32, roundUp(n, nr)*k)}
	for j := range n {
		if k == 0 {
			break
		}
		pan := p.data[j/nr*k*nr+j%nr:]
		for q, v := range bt[j*ldb : j*ldb+k] {
			pan[q*nr] = v
		}
	}
	return p
}

// Rows returns k, the number of rows of the packed matrix.
func (p *PackedB) Rows() int { return p.k }

// Cols returns n, the number of columns of the packed matrix.
func (p *PackedB) Cols() int { return p.n }

// GatherInPlace reports whether the active kernel reads a gathered A
// (SgemmGatherA) in place; without it, SgemmGatherA copies A's panels
// first, which is correct but slower than the other forms of a product.
func GatherInPlace() bool { return activeKernel.microGatherA != nil }

// Slots returns the multiply-add slots per unit of depth that the active
// kernel computes for an m x n product in which A is packed (Sgemm,
// SgemmPacked, SgemmPackedRows): m and n rounded up to whole tiles, a
// last panel of at most nr/2 columns counted as half a panel where the
// kernel has a half-width micro-kernel for it.
func Slots(m, n int) int {
	kern := activeKernel
	cols := n / kern.nr * kern.nr
	if rest := n - cols; rest > 0 {
		if rest <= kern.nr/2 && kern.microHalf != nil {
			cols += kern.nr / 2
		} else {
			cols += kern.nr
		}
	}
	return roundUp(m, kern.mr) * cols
}

// GatherSlots is Slots for SgemmGatherA, which computes whole tiles.
func GatherSlots(m, n int) int {
	return roundUp(m, activeKernel.mr) * roundUp(n, activeKernel.nr)
}

// Offsets is a list of offsets with its smallest and largest value, for
// SgemmGatherA's depth offsets, which a convolution reuses at every run:
// their bounds are found once here rather than at every call.
type Offsets struct {
	off    []int
	lo, hi int
}

// NewOffsets returns off (kept, not copied) with its bounds.
func NewOffsets(off []int) Offsets {
	o := Offsets{off: off}
	if len(off) > 0 {
		o.lo, o.hi = span(off)
	}
	return o
}

// SgemmGatherA computes C = A*B for the columns [j0, j1) of pb, where A
// (m x k, m = len(aoff), k = len(koff.off)) is gathered from a by
// offsets: A[i, p] = a[aoff[i] + koff.off[p]]. C is m x (j1-j0) with row stride ldc,
// column j-j0 holding product column j; j0 must be a multiple of the
// kernel's nr (see TileShape). A convolution whose output positions are
// the rows (aoff: each position's place in the zero-bordered input
// planes) and whose kernel taps are the depth (koff: each input channel
// and tap's shift) is then an implicit im2col with the output channels
// as columns, which fills whole tiles when there are few positions and
// many channels.
//
// It panics on invalid dimensions, offsets outside a or a short slice.
func SgemmGatherA(a []float32, aoff []int, ko Offsets, pb *PackedB, j0, j1 int, c []float32, ldc int) {
	kern, koff := pb.kern, ko.off
	m, k, nr, mr := len(aoff), pb.k, kern.nr, kern.mr
	if len(koff) != k {
		panic(fmt.Sprintf("gemm.SgemmGatherA: %d column offsets for depth %d", len(koff), k))
	}
	if j0 < 0 || j0 > j1 || j1 > pb.n || j0%nr != 0 {
		panic(fmt.Sprintf("gemm.SgemmGatherA: columns [%d, %d) of %d (tile width %d)", j0, j1, pb.n, nr))
	}
	checkOffsets(a, aoff, ko)
	checkMatrix("SgemmGatherA", "c", c, m, j1-j0, ldc)
	if m == 0 || j0 == j1 {
		return
	}
	if k == 0 {
		for i := range m {
			clear(c[i*ldc : i*ldc+j1-j0])
		}
		return
	}
	ws := workspaces.Get().(*workspace)
	defer workspaces.Put(ws)
	kcb := gatherKc(k)
	if kern.microGatherA == nil {
		ws.a = grow(ws.a, mr*k)
	}
	// A partial row tile (its offsets padded with its last row's) is
	// computed in the scratch tile and copied out.
	full := m / mr * mr
	part := ws.rows[:0]
	if full < m {
		part = ws.rows[:mr]
		n := copy(part, aoff[full:])
		for i := n; i < mr; i++ {
			part[i] = aoff[m-1]
		}
	}
	t := ws.tile[:mr*nr]
	for jr := j0; jr < j1; jr += nr {
		nw := min(nr, j1-jr)
		panel := pb.data[jr*k : (jr+nr)*k]
		if nw < nr {
			// A partial panel: every tile through the scratch tile,
			// each of the whole depth.
			for ir := 0; ir < m; ir += mr {
				ro := part
				if ir < full {
					ro = aoff[ir : ir+mr]
				}
				gatherTile(kern, k, a, ro, koff, panel, t, nr, false, ws.a)
				copyTile(c[ir*ldc+jr-j0:], ldc, t, nr, min(mr, m-ir), nw)
			}
			continue
		}
		// Whole panels a rank-kc block at a time, so that the block
		// stays in L1 for every row tile.
		for pc := 0; pc < k; pc += kcb {
			kc := min(kcb, k-pc)
			for ir := 0; ir < full; ir += mr {
				gatherTile(kern, kc, a, aoff[ir:ir+mr], koff[pc:pc+kc], panel[pc*nr:], c[ir*ldc+jr-j0:], ldc, pc > 0, ws.a)
			}
			if len(part) > 0 {
				gatherTile(kern, kc, a, part, koff[pc:pc+kc], panel[pc*nr:], t, nr, pc > 0, ws.a)
			}
		}
		if len(part) > 0 {
			copyTile(c[full*ldc+jr-j0:], ldc, t, nr, m-full, nw)
		}
	}
}

// copyTile copies rows x cols of the tile t (row stride lt) into c.
func copyTile(c []float32, ldc int, t []float32, lt, rows, cols int) {
	for i := range rows {
		copy(c[i*ldc:i*ldc+cols], t[i*lt:i*lt+cols])
	}
}

// gatherKcMax bounds the depth of SgemmGatherA's rank-kc blocks: a block
// of a 32-column panel (16 KB) and the rows of A it reads stay in L1
// together.
const gatherKcMax = 128

// gatherKc returns the depth of each rank-kc block for depth k: k split
// into equal blocks of at most gatherKcMax.
func gatherKc(k int) int {
	blocks := (k + gatherKcMax - 1) / gatherKcMax
	return (k + blocks - 1) / blocks
}

// gatherTile computes one mr x nr tile of C (+)= A*B of depth kc, A
// gathered as a[ro[i]+koff[p]] and B the panel bp (row stride nr): by the
// kernel's microGatherA, or by copying A's panel into ap and calling its
// micro-kernel.
func gatherTile(kern *kernel, kc int, a []float32, ro, koff []int, bp, c []float32, ldc int, acc bool, ap []float32) {
	if kern.microGatherA != nil {
		kern.microGatherA(kc, a, ro, koff, bp, c, ldc, acc)
		return
	}
	mr := kern.mr
	ap = ap[:kc*mr]
	for i, o := range ro[:mr] {
		src := a[o:]
		for p, q := range koff[:kc] {
			ap[p*mr+i] = src[q]
		}
	}
	kern.micro(kc, 1, ap, bp, kern.nr, c, ldc, acc)
}

// checkOffsets panics unless every a[aoff[i]+ko.off[p]] lies in a.
func checkOffsets(a []float32, aoff []int, ko Offsets) {
	if len(aoff) == 0 || len(ko.off) == 0 {
		return
	}
	amin, amax := span(aoff)
	if amin+ko.lo < 0 || amax+ko.hi >= len(a) {
		panic(fmt.Sprintf("gemm.SgemmGatherA: offsets reach [%d, %d], outside len(a)=%d", amin+ko.lo, amax+ko.hi, len(a)))
	}
}

// span returns the smallest and largest of the non-empty s.
func span(s []int) (lo, hi int) {
	lo, hi = s[0], s[0]
	for _, v := range s {
		lo, hi = min(lo, v), max(hi, v)
	}
	return lo, hi
}
