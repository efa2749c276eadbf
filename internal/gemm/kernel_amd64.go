//go:build !noasm

package gemm

import "golang.org/x/sys/cpu"

// avx2Kernel is the 6x16 AVX2+FMA micro-kernel in kernel_amd64.s.
var avx2Kernel = &kernel{name: "avx2fma6x16", mr: 6, nr: 16, micro: micro6x16AVX2}

func bestKernel() *kernel {
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA {
		return avx2Kernel
	}
	return genericKernel
}

// micro6x16AVX2 implements kernel.micro for a 6x16 tile.
//
//go:noescape
func micro6x16AVX2(kc int, ap, bp, c []float32, ldc int, acc bool)
