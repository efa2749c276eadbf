//go:build !noasm

package gemm

import "golang.org/x/sys/cpu"

// avx2Kernel is the 6x16 AVX2+FMA micro-kernel in kernel_amd64.s.
var avx2Kernel = &kernel{name: "avx2fma6x16", mr: 6, nr: 16, micro: micro6x16, packB: packB16}

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

func bestKernel() *kernel {
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		return avx2Kernel
	}
	return genericKernel
}

// micro6x16 checks the bounds that micro6x16AVX2 relies on and calls it.
func micro6x16(kc, tiles int, ap, bp []float32, ldb int, c []float32, ldc int, acc bool) {
	_ = ap[tiles*kc*6-1]
	_ = bp[(kc-1)*ldb+15]
	_ = c[(tiles*6-1)*ldc+15]
	micro6x16AVX2(kc, tiles, ap, bp, ldb, c, ldc, acc)
}

// micro6x16AVX2 implements kernel.micro for 6x16 tiles.
//
//go:noescape
func micro6x16AVX2(kc, tiles int, ap, bp []float32, ldb int, c []float32, ldc int, acc bool)

// packB16AVX copies panels whole 16-column micro-panels of the kc-row block
// of B at b (row stride ldb) into dst in packB's layout.
//
//go:noescape
func packB16AVX(kc, panels int, b []float32, ldb int, dst []float32)
