//go:build !noasm

package gemm

import "golang.org/x/sys/cpu"

// avx2Kernel is the 6x16 AVX2+FMA micro-kernel in kernel_amd64.s.
var avx2Kernel = &kernel{name: "avx2fma6x16", mr: 6, nr: 16, micro: micro6x16, packA: packA6, packB: packB16, packBT: packBT16, packBRows: packBRows16}

// packA6 is packA for mr = 6 with whole panels transposed 8 columns at a
// time by packA6AVX.
func packA6(mc, kc, mr int, a []float32, lda int, dst []float32) {
	full, kc8 := mc/6, kc/8*8
	if full > 0 && kc8 > 0 {
		_ = a[(full*6-1)*lda+kc8-1]
		_ = dst[full*kc*6-1]
		packA6AVX(kc8, full, a, lda, dst, kc)
	}
	for r := 0; r < full*6; r += 6 {
		pan := dst[r*kc : (r+6)*kc]
		for i := range 6 {
			row := a[(r+i)*lda : (r+i)*lda+kc]
			for p := kc8; p < kc; p++ {
				pan[p*6+i] = row[p]
			}
		}
	}
	if full*6 < mc {
		packA(mc-full*6, kc, mr, a[full*6*lda:], lda, dst[full*6*kc:])
	}
}

// packB16 is packB for nr = 16 with the full panels copied by packB16AVX.
func packB16(kc, nc, nr int, b []float32, ldb int, dst []float32) {
	full := nc / 16
	if full > 0 {
		// Bounds for the assembly: the last row read and the last panel written.
		_ = b[(kc-1)*ldb+full*16-1]
		_ = dst[(full*kc)*16-1]
		packB16AVX(kc, full, b, ldb, dst)
	}
	if full*16 < nc {
		packB(kc, nc-full*16, nr, b[full*16:], ldb, dst[full*16*kc:])
	}
}

// packBRows16 is packBRows for nr = 16 with the full panels copied by
// packBRows16AVX.
func packBRows16(kc, nc, nr int, b []float32, off []int, j0 int, dst []float32) {
	full := nc / 16
	off = off[:kc]
	if full > 0 {
		// Bounds for the assembly: every row read and the last panel written.
		for _, o := range off {
			_ = b[o+j0+full*16-1]
		}
		_ = dst[(full*kc)*16-1]
		packBRows16AVX(kc, full, b[j0:], off, dst)
	}
	if full*16 < nc {
		packBRows(kc, nc-full*16, nr, b, off, j0+full*16, dst[full*16*kc:])
	}
}

// packBT16 is packBT for nr = 16 with whole panels transposed 8x8 at a
// time by packBT16AVX.
func packBT16(kc, nc, nr int, bt []float32, ldb int, dst []float32) {
	full, kc8 := nc/16, kc/8*8
	if full > 0 && kc8 > 0 {
		_ = bt[(full*16-1)*ldb+kc8-1]
		_ = dst[full*kc*16-1]
		packBT16AVX(kc8, full, bt, ldb, dst, kc)
	}
	for s := 0; s < full*16; s += 16 {
		pan := dst[s*kc : (s+16)*kc]
		for j := range 16 {
			row := bt[(s+j)*ldb : (s+j)*ldb+kc]
			for p := kc8; p < kc; p++ {
				pan[p*16+j] = row[p]
			}
		}
	}
	if full*16 < nc {
		packBT(kc, nc-full*16, nr, bt[full*16*ldb:], ldb, dst[full*16*kc:])
	}
}

// sseKernel is the 6x8 SSE micro-kernel in kernel_amd64.s. SSE is part of
// every amd64 CPU, so it is the floor.
var sseKernel = &kernel{name: "sse6x8", mr: 6, nr: 8, micro: micro6x8, packB: packB8}

// packB8 is packB for nr = 8 with the full panels copied by packB8SSE.
func packB8(kc, nc, nr int, b []float32, ldb int, dst []float32) {
	full := nc / 8
	if full > 0 {
		_ = b[(kc-1)*ldb+full*8-1]
		_ = dst[(full*kc)*8-1]
		packB8SSE(kc, full, b, ldb, dst)
	}
	if full*8 < nc {
		packB(kc, nc-full*8, nr, b[full*8:], ldb, dst[full*8*kc:])
	}
}

// runnableKernels lists the kernels this CPU runs, fastest first.
func runnableKernels() []*kernel {
	ks := []*kernel{sseKernel, genericKernel}
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		ks = append([]*kernel{avx2Kernel}, ks...)
	}
	if cpu.X86.HasAVX512F {
		ks = append([]*kernel{avx512Kernel}, ks...)
	}
	return ks
}

// micro6x16 checks the bounds that micro6x16AVX2 relies on and calls it.
func micro6x16(kc, tiles int, ap, bp []float32, ldb int, c []float32, ldc int, acc bool) {
	_ = ap[tiles*kc*6-1]
	_ = bp[(kc-1)*ldb+15]
	_ = c[(tiles*6-1)*ldc+15]
	micro6x16AVX2(kc, tiles, ap, bp, ldb, c, ldc, acc)
}

// micro6x8 checks the bounds that micro6x8SSE relies on and calls it.
func micro6x8(kc, tiles int, ap, bp []float32, ldb int, c []float32, ldc int, acc bool) {
	_ = ap[tiles*kc*6-1]
	_ = bp[(kc-1)*ldb+7]
	_ = c[(tiles*6-1)*ldc+7]
	micro6x8SSE(kc, tiles, ap, bp, ldb, c, ldc, acc)
}

// micro6x8SSE implements kernel.micro for 6x8 tiles.
//
//go:noescape
func micro6x8SSE(kc, tiles int, ap, bp []float32, ldb int, c []float32, ldc int, acc bool)

// micro6x16AVX2 implements kernel.micro for 6x16 tiles.
//
//go:noescape
func micro6x16AVX2(kc, tiles int, ap, bp []float32, ldb int, c []float32, ldc int, acc bool)

// packB16AVX copies panels whole 16-column micro-panels of the kc-row block
// of B at b (row stride ldb) into dst in packB's layout.
//
//go:noescape
func packB16AVX(kc, panels int, b []float32, ldb int, dst []float32)

// packBRows16AVX copies panels whole 16-column micro-panels of the kc rows
// b[off[p]:] into dst in packB's layout.
//
//go:noescape
func packBRows16AVX(kc, panels int, b []float32, off []int, dst []float32)

// packBT16AVX packs the first kc8 (a multiple of 8) columns of panels whole
// 16-row groups of B^T into dst in packB's layout for depth kc.
//
//go:noescape
func packBT16AVX(kc8, panels int, bt []float32, ldb int, dst []float32, kc int)

// packB8SSE copies panels whole 8-column micro-panels of the kc-row block
// of B at b (row stride ldb) into dst in packB's layout.
//
//go:noescape
func packB8SSE(kc, panels int, b []float32, ldb int, dst []float32)

// packA6AVX packs the first kc8 (a multiple of 8) columns of panels whole
// 6-row panels of A into dst in packA's layout for depth kc.
//
//go:noescape
func packA6AVX(kc8, panels int, a []float32, lda int, dst []float32, kc int)
