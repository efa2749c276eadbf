package native

import "github.com/splitstream/splitstream/models/native/internal/gemm"

// sgemm computes C (+)= A*B for row-major float32 matrices.
func sgemm(m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, accumulate bool, threads int) {
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
	gemm.Sgemm(m, n, k, a, lda, b, ldb, c, ldc, accumulate, threads)
}
