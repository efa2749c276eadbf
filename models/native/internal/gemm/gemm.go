package gemm

import (
	"fmt"
	"sync"
)

// Sgemm computes C = A*B, or C += A*B when accumulate is set, where A is
// m x k with row stride lda, B is k x n with row stride ldb and C is m x n
// with row stride ldc. All matrices are row-major float32 and strides count
// elements. threads <= 1 runs on the calling goroutine; a larger value splits
// C statically into at most that many bands of whole micro-tiles, one
// goroutine each (fewer when the product is too small to pay for them).
//
// Sgemm panics if a dimension or stride is invalid or a slice is too short:
// those are programming errors, not input errors.
func Sgemm(m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, accumulate bool, threads int) {
	checkArgs("Sgemm", m, n, k, a, lda, b, ldb, false, c, ldc)
	run(m, n, k, aSource{a: a, lda: lda}, b, ldb, bRows{}, false, c, ldc, accumulate, threads)
}

// SgemmNT is Sgemm with B given transposed: b holds the n x k matrix B^T with
// row stride ldb, as fully connected layers store their weights.
func SgemmNT(m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, accumulate bool, threads int) {
	checkArgs("SgemmNT", m, n, k, a, lda, b, ldb, true, c, ldc)
	run(m, n, k, aSource{a: a, lda: lda}, b, ldb, bRows{}, true, c, ldc, accumulate, threads)
}

// checkArgs panics with a message naming fn and the offending argument when
// the dimensions, strides or slice lengths cannot describe the product.
// a is not checked when it is nil and lda is 0 (A comes packed).
func checkArgs(fn string, m, n, k int, a []float32, lda int, b []float32, ldb int, transB bool, c []float32, ldc int) {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("gemm.%s: negative dimension m=%d n=%d k=%d", fn, m, n, k))
	}
	if a != nil || lda != 0 {
		checkMatrix(fn, "a", a, m, k, lda)
	}
	if transB {
		checkMatrix(fn, "b", b, n, k, ldb)
	} else {
		checkMatrix(fn, "b", b, k, n, ldb)
	}
	checkMatrix(fn, "c", c, m, n, ldc)
}

// checkMatrix panics unless s holds a rows x cols matrix with row stride ld.
func checkMatrix(fn, name string, s []float32, rows, cols, ld int) {
	if ld < max(cols, 1) {
		panic(fmt.Sprintf("gemm.%s: %s stride %d < %d columns", fn, name, ld, cols))
	}
	if rows == 0 || cols == 0 {
		return
	}
	if l := (rows-1)*ld + cols; len(s) < l {
		panic(fmt.Sprintf("gemm.%s: len(%s)=%d < %d for %dx%d with stride %d", fn, name, len(s), l, rows, cols, ld))
	}
}

// aSource is where the blocked loop gets A from: the caller's matrix, packed
// block by block, or a PackedA packed once beforehand.
type aSource struct {
	a      []float32
	lda    int
	packed *PackedA
}

// run splits C into bands and computes each with the blocked loop. Columns
// are split when n >= m, so that each band packs only its own part of B;
// otherwise rows are split. Band edges fall on micro-tile boundaries.
// When boff.off is not nil, row p of B starts at b[boff.off[p]] (ldb unused).
func run(m, n, k int, as aSource, b []float32, ldb int, boff bRows, transB bool, c []float32, ldc int, accumulate bool, threads int) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		if !accumulate {
			for i := range m {
				clear(c[i*ldc : i*ldc+n])
			}
		}
		return
	}
	kern := activeKernel
	if as.packed != nil {
		kern = as.packed.kern
	}
	byCols := n >= m
	unit, size := kern.mr, m
	if byCols {
		unit, size = kern.nr, n
	}
	// Never make bands thinner than one micro-tile, nor so small that
	// starting a goroutine costs more than it saves.
	tiles := (size + unit - 1) / unit
	bands := max(1, min(threads, tiles, m*n*k/minBandWork))
	if bands == 1 {
		blocked(kern, 0, m, 0, n, k, as, b, ldb, boff, transB, c, ldc, accumulate)
		return
	}
	parallel(kern, bands, byCols, m, n, k, as, b, ldb, boff, transB, c, ldc, accumulate)
}

// parallel computes C in bands bands of whole micro-tiles, of columns when
// byCols is set, else of rows, the last band on the calling goroutine.
func parallel(kern *kernel, bands int, byCols bool, m, n, k int, as aSource, b []float32, ldb int, boff bRows, transB bool, c []float32, ldc int, accumulate bool) {
	unit, size := kern.mr, m
	if byCols {
		unit, size = kern.nr, n
	}
	tiles := (size + unit - 1) / unit
	var wg sync.WaitGroup
	for t := range bands {
		lo, hi := min(size, t*tiles/bands*unit), min(size, (t+1)*tiles/bands*unit)
		if lo == hi {
			continue
		}
		body := func() {
			if byCols {
				blocked(kern, 0, m, lo, hi, k, as, b, ldb, boff, transB, c, ldc, accumulate)
			} else {
				blocked(kern, lo, hi, 0, n, k, as, b, ldb, boff, transB, c, ldc, accumulate)
			}
		}
		if t == bands-1 {
			body()
		} else {
			wg.Go(body)
		}
	}
	wg.Wait()
}

// Cache blocking: kcMax bounds the depth of one rank-kc update so that a
// micro-panel of B (kc x nr) stays in L1 and an A block (mcMax x kc) in L2;
// ncMax bounds the packed B block (kc x nc), meant for L3.
const (
	kcMax = 256
	mcMax = 144
	ncMax = 4096
)

// B is read in place rather than packed when a block has at most
// directMaxRows rows of A and the B block (k x nc) holds at most directMaxB
// floats, so that B is likely still in cache: B in main memory is read
// faster row by row, as packing reads it, than panel by panel.
const (
	directMaxRows = 24
	directMaxB    = 2 << 20
)

// directMaxRowsGathered is directMaxRows for B gathered by row offsets
// (SgemmPackedRows), whose rows the kernel reads from wherever they lie:
// with up to 6 micro-tiles of A per panel, packing B (one copy of every
// row) cost more than the scattered reads.
const directMaxRowsGathered = 48

// bRows is B given as rows gathered by offset: row p is b[off[p]:], and
// max is the largest offset.
type bRows struct {
	off []int
	max int
}

// minBandWork is the fewest multiply-adds worth a goroutine of their own:
// about a microsecond of the AVX2 kernel.
const minBandWork = 1 << 16

// tileSz bounds mr*nr for every kernel: the scratch tile for edges.
const tileSz = 16 * 32

// kcSplit returns the depth of each rank-kc update for a product of depth k:
// k split into equal blocks of at most kcMax.
func kcSplit(k int) int {
	blocks := (k + kcMax - 1) / kcMax
	return (k + blocks - 1) / blocks
}

// workspace holds one goroutine's packing buffers.
type workspace struct {
	a, b []float32
	tile [tileSz]float32
	rows [16]int // SgemmGatherA's partial row tile's offsets (mr <= 16)
}

var workspaces = sync.Pool{New: func() any { return new(workspace) }}

// grow returns s resized to n elements, reallocating only when it is short.
func grow(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}

// blocked computes rows [i0, i1) and columns [j0, j1) of C: the Goto/BLIS
// loop nest around kern's micro-kernel. boff is as for run.
func blocked(kern *kernel, i0, i1, j0, j1, k int, as aSource, b []float32, ldb int, boff bRows, transB bool, c []float32, ldc int, accumulate bool) {
	mr, nr := kern.mr, kern.nr
	ws := workspaces.Get().(*workspace)
	defer workspaces.Put(ws)
	kcb := kcSplit(k)
	mc := mcMax / mr * mr
	ws.b = grow(ws.b, kcb*min(ncMax, roundUp(j1-j0, nr)))
	if as.packed == nil {
		ws.a = grow(ws.a, kcb*min(mc, roundUp(i1-i0, mr)))
	}
	for jc := j0; jc < j1; jc += ncMax {
		nc := min(ncMax, j1-jc)
		for pc := 0; pc < k; pc += kcb {
			kc := min(kcb, k-pc)
			// With few rows of A per block, packing B costs as much as
			// the kernel saves by reading it packed: read full panels in
			// place and pack only a partial last one (see directMaxRows).
			var bd []float32
			var gathered []int
			switch {
			case boff.off != nil && kern.microRows != nil && min(mc, i1-i0) <= directMaxRowsGathered &&
				boff.max+jc+roundUp(nc, nr) <= len(b):
				// Few rows of A: the kernel reads B's rows in place,
				// as in the direct case below; the slack after the
				// last row lets it read whole panels.
				gathered = boff.off[pc : pc+kc]
			case boff.off != nil && kern.packBRows != nil:
				kern.packBRows(kc, nc, nr, b, boff.off[pc:pc+kc], jc, ws.b)
			case boff.off != nil:
				packBRows(kc, nc, nr, b, boff.off[pc:pc+kc], jc, ws.b)
			case transB && kern.packBT != nil:
				kern.packBT(kc, nc, nr, b[jc*ldb+pc:], ldb, ws.b)
			case transB:
				packBT(kc, nc, nr, b[jc*ldb+pc:], ldb, ws.b)
			case min(mc, i1-i0) <= directMaxRows && k*nc <= directMaxB:
				bd = b[pc*ldb+jc:]
				if full := nc / nr * nr; full < nc {
					packB(kc, nc-full, nr, bd[full:], ldb, ws.b[full*kc:])
				}
			case kern.packB != nil:
				kern.packB(kc, nc, nr, b[pc*ldb+jc:], ldb, ws.b)
			default:
				packB(kc, nc, nr, b[pc*ldb+jc:], ldb, ws.b)
			}
			acc := accumulate || pc > 0
			for ic := i0; ic < i1; ic += mc {
				mcb := min(mc, i1-ic)
				var ap []float32
				if p := as.packed; p != nil {
					ap = p.block(pc, ic)
				} else {
					packAFor(kern, mcb, kc, as.a[ic*as.lda+pc:], as.lda, ws.a)
					ap = ws.a
				}
				if gathered != nil {
					macroRows(kern, mcb, nc, kc, ap, b[jc:], gathered, boff.max, c[ic*ldc+jc:], ldc, acc, &ws.tile)
					continue
				}
				macro(kern, mcb, nc, kc, ap, ws.b, bd, ldb, c[ic*ldc+jc:], ldc, acc, &ws.tile)
			}
		}
	}
}

func roundUp(x, unit int) int { return (x + unit - 1) / unit * unit }

// macro multiplies a packed mc x kc block of A by a kc x nc block of B into
// C, one mr x nr micro-tile at a time. B comes packed in bp, or, when bd is
// not nil, in place in bd (row stride ldb) but for a partial last panel,
// which is packed in bp. Partial tiles at the bottom and right edges go
// through tile and are copied out.
func macro(kern *kernel, mc, nc, kc int, ap, bp, bd []float32, ldb int, c []float32, ldc int, acc bool, tile *[tileSz]float32) {
	mr, nr := kern.mr, kern.nr
	for jr := 0; jr < nc; jr += nr {
		nw := min(nr, nc-jr)
		bpan, bstride := bp[jr*kc:(jr+nr)*kc], nr
		if bd != nil && nw == nr {
			bpan, bstride = bd[jr:], ldb
		}
		micro, kw := kern.micro, nr
		if nw <= nr/2 && kern.microHalf != nil {
			micro, kw = kern.microHalf, nr/2
		}
		full := mc / mr
		if nw < kw {
			full = 0
		}
		if full > 0 {
			micro(kc, full, ap[:full*mr*kc], bpan, bstride, c[jr:], ldc, acc)
		}
		for ir := full * mr; ir < mc; ir += mr {
			apan := ap[ir*kc : (ir+mr)*kc]
			mh := min(mr, mc-ir)
			ct := c[ir*ldc+jr:]
			t := tile[:mr*kw]
			micro(kc, 1, apan, bpan, bstride, t, kw, false)
			for i := range mh {
				row, trow := ct[i*ldc:i*ldc+nw], t[i*kw:i*kw+nw]
				if acc {
					for j, v := range trow {
						row[j] += v
					}
				} else {
					copy(row, trow)
				}
			}
		}
	}
}

// macroRows is macro for B read in place from the rows b[off[p]:] (b
// starting at the block's first column; maxOff the largest offset). Every
// panel is read whole, so b must hold roundUp(nc, nr) columns after the
// last row's offset; partial tiles go through tile as in macro.
func macroRows(kern *kernel, mc, nc, kc int, ap, b []float32, off []int, maxOff int, c []float32, ldc int, acc bool, tile *[tileSz]float32) {
	mr, nr := kern.mr, kern.nr
	for jr := 0; jr < nc; jr += nr {
		nw := min(nr, nc-jr)
		micro, kw := kern.microRows, nr
		if nw <= nr/2 && kern.microRowsHalf != nil {
			micro, kw = kern.microRowsHalf, nr/2
		}
		bj := b[jr:]
		full := mc / mr
		if nw < kw {
			full = 0
		}
		if full > 0 {
			micro(kc, full, ap[:full*mr*kc], bj, off, maxOff, c[jr:], ldc, acc)
		}
		for ir := full * mr; ir < mc; ir += mr {
			apan := ap[ir*kc : (ir+mr)*kc]
			mh := min(mr, mc-ir)
			ct := c[ir*ldc+jr:]
			t := tile[:mr*kw]
			micro(kc, 1, apan, bj, off, maxOff, t, kw, false)
			for i := range mh {
				row, trow := ct[i*ldc:i*ldc+nw], t[i*kw:i*kw+nw]
				if acc {
					for j, v := range trow {
						row[j] += v
					}
				} else {
					copy(row, trow)
				}
			}
		}
	}
}
