//go:build !noasm

package gemm

// avx512Kernel is the 8x32 AVX-512 micro-kernel in kernel_avx512_amd64.s,
// with an 8x16 companion for a block's last panel when it is at most 16
// columns wide. Its rows match the channel counts of the shipped graphs
// (multiples of 8); on a CPU with two 512-bit FMA pipes it does twice the
// work per cycle of the AVX2 kernel.
var avx512Kernel = &kernel{name: "avx512f8x32", mr: 8, nr: 32, micro: micro8x32, microHalf: micro8x16,
	packB: packB32, packBRows: packBRows32, microRows: micro8x32Rows, microRowsHalf: micro8x16Rows,
	microGatherA: gather8x32}

// gather8x32 checks the bounds that gather8x32AVX512 relies on but A's
// (SgemmGatherA checks those) and calls it.
func gather8x32(kc int, a []float32, ro, koff []int, bp, c []float32, ldc int, acc bool) {
	_ = ro[7]
	_ = koff[kc-1]
	_ = bp[kc*32-1]
	_ = c[7*ldc+31]
	gather8x32AVX512(kc, a, ro, koff, bp, c, ldc, acc)
}

// micro8x32Rows checks the bounds that micro8x32RowsAVX512 relies on (every
// row b[off[p]:] holds 32 columns: maxOff is the largest offset) and calls
// it.
func micro8x32Rows(kc, tiles int, ap, b []float32, off []int, maxOff int, c []float32, ldc int, acc bool) {
	_ = ap[tiles*kc*8-1]
	_ = off[kc-1]
	_ = b[maxOff+31]
	_ = c[(tiles*8-1)*ldc+31]
	micro8x32RowsAVX512(kc, tiles, ap, b, off[:kc], c, ldc, acc)
}

// micro8x16Rows is micro8x32Rows for tiles 16 columns wide.
func micro8x16Rows(kc, tiles int, ap, b []float32, off []int, maxOff int, c []float32, ldc int, acc bool) {
	_ = ap[tiles*kc*8-1]
	_ = off[kc-1]
	_ = b[maxOff+15]
	_ = c[(tiles*8-1)*ldc+15]
	micro8x16RowsAVX512(kc, tiles, ap, b, off[:kc], c, ldc, acc)
}

// tailMasks returns the AVX-512 masks of the first w < 32 columns of a
// panel: columns 0-15 and 16-31.
func tailMasks(w int) (lo, hi int) {
	return 1<<min(w, 16) - 1, 1<<max(w-16, 0) - 1
}

// packB32 is packB for nr = 32: whole panels and the partial last one
// (masked loads) by packB32AVX512.
func packB32(kc, nc, nr int, b []float32, ldb int, dst []float32) {
	full, w := nc/32, nc%32
	// Bounds for the assembly: the last row read and the last panel written.
	_ = b[(kc-1)*ldb+nc-1]
	_ = dst[(full+min(w, 1))*kc*32-1]
	lo, hi := tailMasks(w)
	packB32AVX512(kc, full, b, ldb, dst, lo, hi)
}

// packBRows32 is packBRows for nr = 32, by packBRows32AVX512.
func packBRows32(kc, nc, nr int, b []float32, off []int, j0 int, dst []float32) {
	full, w := nc/32, nc%32
	off = off[:kc]
	for _, o := range off {
		_ = b[o+j0+nc-1]
	}
	_ = dst[(full+min(w, 1))*kc*32-1]
	lo, hi := tailMasks(w)
	packBRows32AVX512(kc, full, b[j0:], off, dst, lo, hi)
}

// micro8x32 checks the bounds that micro8x32AVX512 relies on and calls it.
func micro8x32(kc, tiles int, ap, bp []float32, ldb int, c []float32, ldc int, acc bool) {
	_ = ap[tiles*kc*8-1]
	_ = bp[(kc-1)*ldb+31]
	_ = c[(tiles*8-1)*ldc+31]
	micro8x32AVX512(kc, tiles, ap, bp, ldb, c, ldc, acc)
}

// micro8x16 is micro8x32 for tiles 16 columns wide.
func micro8x16(kc, tiles int, ap, bp []float32, ldb int, c []float32, ldc int, acc bool) {
	_ = ap[tiles*kc*8-1]
	_ = bp[(kc-1)*ldb+15]
	_ = c[(tiles*8-1)*ldc+15]
	micro8x16AVX512(kc, tiles, ap, bp, ldb, c, ldc, acc)
}

// micro8x32AVX512 implements kernel.micro for 8x32 tiles.
//
//go:noescape
func micro8x32AVX512(kc, tiles int, ap, bp []float32, ldb int, c []float32, ldc int, acc bool)

// micro8x16AVX512 implements kernel.micro for 8x16 tiles.
//
//go:noescape
func micro8x16AVX512(kc, tiles int, ap, bp []float32, ldb int, c []float32, ldc int, acc bool)

// packB32AVX512 copies panels whole 32-column panels of the kc-row block of
// B at b (row stride ldb) into dst in packB's layout, then, when lo is not
// zero, a partial panel of the columns in the masks lo and hi (the rest
// zero).
//
//go:noescape
func packB32AVX512(kc, panels int, b []float32, ldb int, dst []float32, lo, hi int)

// packBRows32AVX512 is packB32AVX512 for rows gathered by offset: row p
// is b[off[p]:].
//
//go:noescape
func packBRows32AVX512(kc, panels int, b []float32, off []int, dst []float32, lo, hi int)

// micro8x32RowsAVX512 is micro8x32AVX512 with row p of B at b[off[p]:].
//
//go:noescape
func micro8x32RowsAVX512(kc, tiles int, ap, b []float32, off []int, c []float32, ldc int, acc bool)

// micro8x16RowsAVX512 is micro8x16AVX512 with row p of B at b[off[p]:].
//
//go:noescape
func micro8x16RowsAVX512(kc, tiles int, ap, b []float32, off []int, c []float32, ldc int, acc bool)

// gather8x32AVX512 implements kernel.microGatherA for 8x32 tiles: each
// step broadcasts the eight rows' values a[ro[i]+koff[p]] from eight row
// pointers indexed by koff[p].
//
//go:noescape
func gather8x32AVX512(kc int, a []float32, ro, koff []int, bp, c []float32, ldc int, acc bool)
