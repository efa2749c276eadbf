// Package gemm multiplies single-precision matrices for the pure-Go inference
// engine: convolutions (through im2col), Gemm and MatMul all end here.
//
// Matrices are row-major float32 slices with strides counted in elements.
// Sgemm computes C = A*B or C += A*B; SgemmNT takes B transposed (n x k), as
// fully connected weights are stored. PackA packs a constant A, such as a
// convolution's weights (out channels x in channels*kh*kw), once at load time;
// SgemmPacked and SgemmPackedNT then skip that work on every run.
// SgemmPackedRows takes B as rows gathered by offset from one slice, so that
// a convolution summed over shifted views of its input (one view per kernel
// tap) is a single deep product: an implicit im2col that packing B builds.
// SgemmGatherA is the transposed form, for few output positions and many
// channels: A's rows (positions) and columns (taps) are gathered by two
// offset lists and B is a constant packed once by PackBT (a convolution's
// weights, transposed), so that the channels fill whole 32-column tiles.
// The AVX-512 kernel reads the gathered A in place (GatherInPlace); the
// others copy each panel of A first.
//
// The product is a Goto/BLIS blocked loop: B is packed kc rows by nc columns
// at a time, A mc rows by kc columns, and a register-blocked micro-kernel
// computes mr x nr tiles of C from the packed panels. Blocks with few rows of
// A read B in place instead of packing it. The micro-kernel is:
//
//   - amd64: 8x32 in AVX-512 (kernel_avx512_amd64.s, with an 8x16 companion
//     for a block's last panel when it is at most 16 columns wide) when the
//     CPU has AVX-512F, else 6x16 in AVX2 with FMA (kernel_amd64.s) when it
//     has both, else 6x8 in SSE (low-end x86 such as Celeron and Atom lack
//     AVX);
//   - arm64: 8x8 in NEON (kernel_arm64.s);
//   - other architectures, or with the noasm build tag: a portable 4x8
//     kernel in Go (kernel.go).
//
// threads > 1 splits C into that many bands of whole tiles, by columns when
// n >= m, otherwise by rows, each band computed on its own goroutine with
// its own pooled packing buffers; threads <= 1 runs on the caller's
// goroutine without allocating.
//
// For a convolution through im2col, B is the im2col matrix (in channels*kh*kw
// x out pixels). Building and multiplying it in column bands of a few
// hundred pixels (C's band at c[j0:] with ldc = all pixels) keeps each band
// of B in cache instead of writing and rereading the whole matrix. Each
// Sgemm call packs all of A, so on narrow bands pack the weights once with
// PackA: on 64-column bands that is the difference between about 60 and 90
// GFLOP/s here (BenchmarkBands).
package gemm
