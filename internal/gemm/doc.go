// Package gemm multiplies single-precision matrices for the pure-Go inference
// engine: convolutions (through im2col), Gemm and MatMul all end here.
//
// Matrices are row-major float32 slices with strides counted in elements.
// Sgemm takes B as k x n, SgemmNT takes it transposed (n x k).
package gemm
