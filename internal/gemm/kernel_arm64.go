//go:build !noasm

package gemm

// neonKernel is the 8x8 NEON micro-kernel in kernel_arm64.s. NEON is part
// of every arm64 CPU, so it is always selected.
var neonKernel = &kernel{name: "neon8x8", mr: 8, nr: 8, micro: micro8x8}

func bestKernel() *kernel { return neonKernel }

// micro8x8 checks the bounds that micro8x8NEON relies on and calls it.
func micro8x8(kc int, ap, bp []float32, ldb int, c []float32, ldc int, acc bool) {
	_ = ap[kc*8-1]
	_ = bp[(kc-1)*ldb+7]
	_ = c[7*ldc+7]
	micro8x8NEON(kc, ap, bp, ldb, c, ldc, acc)
}

// micro8x8NEON implements kernel.micro for an 8x8 tile.
//
//go:noescape
func micro8x8NEON(kc int, ap, bp []float32, ldb int, c []float32, ldc int, acc bool)
