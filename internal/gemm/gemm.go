package gemm

import (
	"fmt"
	"sync"
)

// Sgemm computes C = A*B, or C += A*B when accumulate is set, where A is
// m x k with row stride lda, B is k x n with row stride ldb and C is m x n
// with row stride ldc. All matrices are row-major float32 and strides count
// elements. threads <= 1 runs on the calling goroutine; a larger value splits
// the work statically over that many goroutines.
//
// Sgemm panics if a dimension or stride is invalid or a slice is too short:
// those are programming errors, not input errors.
func Sgemm(m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, accumulate bool, threads int) {
	checkArgs("Sgemm", m, n, k, a, lda, b, ldb, false, c, ldc)
	run(m, n, k, a, lda, b, ldb, false, c, ldc, accumulate, threads)
}

// SgemmNT is Sgemm with B given transposed: b holds the n x k matrix B^T with
// row stride ldb, as fully connected layers store their weights.
func SgemmNT(m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, accumulate bool, threads int) {
	checkArgs("SgemmNT", m, n, k, a, lda, b, ldb, true, c, ldc)
	run(m, n, k, a, lda, b, ldb, true, c, ldc, accumulate, threads)
}

// checkArgs panics with a message naming fn and the offending argument when
// the dimensions, strides or slice lengths cannot describe the product.
func checkArgs(fn string, m, n, k int, a []float32, lda int, b []float32, ldb int, transB bool, c []float32, ldc int) {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("gemm.%s: negative dimension m=%d n=%d k=%d", fn, m, n, k))
	}
	need := func(name string, s []float32, rows, cols, ld int) {
		if ld < max(cols, 1) {
			panic(fmt.Sprintf("gemm.%s: %s stride %d < %d columns", fn, name, ld, cols))
		}
		if rows == 0 || cols == 0 {
			return
		}
		if l := (rows-1)*ld + cols; len(s) < l {
			panic(fmt.Sprintf("gemm.%s: len(%s)=%d < %d for %dx%d with stride %d", fn, name, len(s), l, rows, cols, ld))
		}
	}
	need("a", a, m, k, lda)
	if transB {
		need("b", b, n, k, ldb)
	} else {
		need("b", b, k, n, ldb)
	}
	need("c", c, m, n, ldc)
}

// run splits C into threads bands (by rows or columns, whichever is larger)
// and computes each band.
func run(m, n, k int, a []float32, lda int, b []float32, ldb int, transB bool, c []float32, ldc int, accumulate bool, threads int) {
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
	if threads <= 1 {
		serial(m, n, k, a, lda, b, ldb, transB, c, ldc, accumulate)
		return
	}
	var wg sync.WaitGroup
	if n >= m {
		for t := range threads {
			j0, j1 := t*n/threads, (t+1)*n/threads
			if j0 == j1 {
				continue
			}
			bb := b[j0:]
			if transB {
				bb = b[j0*ldb:]
			}
			wg.Go(func() { serial(m, j1-j0, k, a, lda, bb, ldb, transB, c[j0:], ldc, accumulate) })
		}
	} else {
		for t := range threads {
			i0, i1 := t*m/threads, (t+1)*m/threads
			if i0 == i1 {
				continue
			}
			wg.Go(func() { serial(i1-i0, n, k, a[i0*lda:], lda, b, ldb, transB, c[i0*ldc:], ldc, accumulate) })
		}
	}
	wg.Wait()
}

// serial is a plain loop; it will be replaced by the blocked kernel.
func serial(m, n, k int, a []float32, lda int, b []float32, ldb int, transB bool, c []float32, ldc int, accumulate bool) {
	for i := range m {
		ci := c[i*ldc : i*ldc+n]
		if !accumulate {
			clear(ci)
		}
		for p := range k {
			aip := a[i*lda+p]
			if transB {
				for j := range ci {
					ci[j] += aip * b[j*ldb+p]
				}
			} else {
				bp := b[p*ldb : p*ldb+n]
				for j, v := range bp {
					ci[j] += aip * v
				}
			}
		}
	}
}
