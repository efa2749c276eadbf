package native

// sgemm computes C (+)= A*B for row-major float32 matrices.
// TODO(gemm): replace with internal/gemm.Sgemm once merged.
func sgemm(m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, accumulate bool, threads int) {
	parallelFor(m, threads, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			ci := c[i*ldc : i*ldc+n]
			if !accumulate {
				clear(ci)
			}
			for p := range k {
				av := a[i*lda+p]
				bp := b[p*ldb : p*ldb+n]
				for j, bv := range bp {
					ci[j] += av * bv
				}
			}
		}
	})
}
