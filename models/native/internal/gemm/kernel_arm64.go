//go:build !noasm

package gemm

// neonKernel is the 8x8 NEON micro-kernel in kernel_arm64.s. NEON is part
// of every arm64 CPU, so it is always selected.
var neonKernel = &kernel{name: "neon8x8", mr: 8, nr: 8, micro: micro8x8}

// runnableKernels lists the kernels this CPU runs, fastest first.
func runnableKernels() []*kernel { return []*kernel{neonKernel, genericKernel} }

// micro8x8 checks the bounds that micro8x8NEON relies on and calls it once
// per tile.
func micro8x8(kc, tiles int, ap, bp []float32, ldb int, c []float32, ldc int, acc bool) {
	_ = ap[tiles*kc*8-1]
	_ = bp[(kc-1)*ldb+7]
	_ = c[(tiles*8-1)*ldc+7]
	for t := range tiles {
		micro8x8NEON(kc, ap[t*kc*8:], bp, ldb, c[t*8*ldc:], ldc, acc)
	}
}

// micro8x8NEON computes one 8x8 tile as kernel.micro describes.
//
//go:noescape
func micro8x8NEON(kc int, ap, bp []float32, ldb int, c []float32, ldc int, acc bool)
