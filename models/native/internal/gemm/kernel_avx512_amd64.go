//go:build !noasm

package gemm

// avx512Kernel is the 8x32 AVX-512 micro-kernel in kernel_avx512_amd64.s,
// with an 8x16 companion for a block's last panel when it is at most 16
// columns wide. Its rows match the channel counts of the shipped graphs
// (multiples of 8); on a CPU with two 512-bit FMA pipes it does twice the
// work per cycle of the AVX2 kernel.
var avx512Kernel = &kernel{name: "avx512f8x32", mr: 8, nr: 32, micro: micro8x32, microHalf: micro8x16}

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
