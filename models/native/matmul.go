package native

import (
	"fmt"
)

func dGemm(c *opCtx) ([]*value, error) {
	if err := c.needN(2); err != nil {
		return nil, err
	}
	a, b := c.in[0], c.in[1]
	if len(a.shape) != 2 || len(b.shape) != 2 {
		return nil, fmt.Errorf("gemm needs 2-D inputs, has %v and %v", a.shape, b.shape)
	}
	ta, tb := c.attrInt("transA", 0) != 0, c.attrInt("transB", 0) != 0
	alpha, beta := c.attrFloat("alpha", 1), c.attrFloat("beta", 1)
	m, k := a.shape[0], a.shape[1]
	if ta {
		m, k = k, m
	}
	kb, n := b.shape[0], b.shape[1]
	if tb {
		kb, n = n, kb
	}
	if k != kb {
		return nil, fmt.Errorf("gemm: inner dimensions differ: A %v, B %v (transA %v, transB %v)", a.shape, b.shape, ta, tb)
	}
	y, err := c.out([]int{m, n})
	if err != nil {
		return nil, err
	}
	// Constant B is stored k x n and scaled by alpha once.
	var bk []float32
	if b.static() {
		bk = make([]float32, k*n)
		bf := b.st.floats()
		for p := range k {
			for j := range n {
				if tb {
					bk[p*n+j] = alpha * bf[j*k+p]
				} else {
					bk[p*n+j] = alpha * bf[p*n+j]
				}
			}
		}
	}
	var cf []float32
	var cidx []int32
	var co operand
	if cv := c.input(2); cv != nil && beta != 0 {
		if _, err := broadcastShape(cv.shape, []int{m, n}); err != nil {
			return nil, fmt.Errorf("gemm: C %v does not broadcast to [%d %d]", cv.shape, m, n)
		}
		if len(cv.shape) > 2 {
			return nil, fmt.Errorf("gemm: C has rank %d", len(cv.shape))
		}
		if cv.static() {
			src := cv.st.floats()
			cf = make([]float32, m*n)
			forEachIndex([]int{m, n}, [][]int{bstrides(cv.shape, []int{m, n})}, func(o int, offs []int) { cf[o] = beta * src[offs[0]] })
		} else {
			co = opnd(cv)
			forEachIndex([]int{m, n}, [][]int{bstrides(cv.shape, []int{m, n})}, func(_ int, offs []int) { cidx = append(cidx, int32(offs[0])) })
		}
	}
	scratch := 0
	if ta {
		scratch += m * k
	}
	if bk == nil {
		scratch += k * n
	}
	ao, bo, threads := opnd(a), opnd(b), c.b.threads
	f := &fusable{}
	c.b.add("Gemm", c.in, []*value{y}, scratch, func(bufs [][]float32, sc []float32, tm *team) {
		as, ys := ao.get(bufs), bufs[y.id]
		if ta {
			t := sc[:m*k]
			sc = sc[m*k:]
			for i := range m {
				for p := range k {
					t[i*k+p] = as[p*m+i]
				}
			}
			as = t
		}
		bs := bk
		if bs == nil {
			bs = bo.get(bufs)
			if tb {
				t := sc[:k*n]
				for p := range k {
					for j := range n {
						t[p*n+j] = bs[j*k+p]
					}
				}
				bs = t
			}
		}
		acc := false
		switch {
		case cf != nil:
			copy(ys, cf)
			acc = true
		case cidx != nil:
			cs := co.get(bufs)
			for o, s := range cidx {
				ys[o] = beta * cs[s]
			}
			acc = true
		}
		sgemmAlpha(m, n, k, alpha, bk == nil, as, k, bs, n, ys, n, acc, threads)
		if act := f.act; act != nil {
			act.apply(ys, ys)
		}
	})
	c.b.fusable[y.id] = f
	return []*value{y}, nil
}

// sgemmAlpha computes C (+)= alpha*A*B; when scaled is false alpha is
// already folded into B.
func sgemmAlpha(m, n, k int, alpha float32, scaled bool, a []float32, lda int, b []float32, ldb int, c []float32, ldc int, acc bool, threads int) {
	if scaled && alpha == 0 {
		if !acc {
			clear(c[:m*n])
		}
		return
	}
	if !scaled || alpha == 1 {
		sgemm(m, n, k, a, lda, b, ldb, c, ldc, acc, threads)
		return
	}
	if !acc {
		sgemm(m, n, k, a, lda, b, ldb, c, ldc, false, threads)
		for i := range m * n {
			c[i] *= alpha
		}
		return
	}
	// C = beta*C0 + alpha*A*B: divide, accumulate, multiply back.
	inv := 1 / alpha
	for i := range m * n {
		c[i] *= inv
	}
	sgemm(m, n, k, a, lda, b, ldb, c, ldc, true, threads)
	for i := range m * n {
		c[i] *= alpha
	}
}

func dMatMul(c *opCtx) ([]*value, error) {
	if err := c.needN(2); err != nil {
		return nil, err
	}
	a, b := c.in[0], c.in[1]
	as, bs := a.shape, b.shape
	if len(as) == 0 || len(bs) == 0 {
		return nil, fmt.Errorf("matmul of a scalar")
	}
	dropM, dropN := len(as) == 1, len(bs) == 1
	if dropM {
		as = []int{1, as[0]}
	}
	if dropN {
		bs = []int{bs[0], 1}
	}
	m, k := as[len(as)-2], as[len(as)-1]
	kb, n := bs[len(bs)-2], bs[len(bs)-1]
	if k != kb {
		return nil, fmt.Errorf("matmul: inner dimensions differ: %v and %v", a.shape, b.shape)
	}
	batchA, batchB := as[:len(as)-2], bs[:len(bs)-2]
	batch, err := broadcastShape(batchA, batchB)
	if err != nil {
		return nil, fmt.Errorf("matmul: %w", err)
	}
	shape := append([]int{}, batch...)
	if !dropM {
		shape = append(shape, m)
	}
	if !dropN {
		shape = append(shape, n)
	}
	y, err := c.out(shape)
	if err != nil {
		return nil, err
	}
	ao, bo, threads := opnd(a), opnd(b), c.b.threads
	f := &fusable{}
	if prod(batchB) == 1 {
		// One product: A's batch rows stacked on top of each other.
		rows := prod(batch) * m
		if prod(batchA) != prod(batch) {
			return nil, fmt.Errorf("matmul: broadcasting A %v against B %v is not supported", a.shape, b.shape)
		}
		c.b.add("MatMul", c.in, []*value{y}, 0, func(bufs [][]float32, _ []float32, tm *team) {
			ys := bufs[y.id]
			sgemm(rows, n, k, ao.get(bufs), k, bo.get(bufs), n, ys, n, false, threads)
			if act := f.act; act != nil {
				act.apply(ys, ys)
			}
		})
		c.b.fusable[y.id] = f
		return []*value{y}, nil
	}
	var offA, offB []int
	forEachIndex(batch, [][]int{bstrides(batchA, batch), bstrides(batchB, batch)}, func(_ int, offs []int) {
		offA, offB = append(offA, offs[0]*m*k), append(offB, offs[1]*k*n)
	})
	c.b.add("MatMul", c.in, []*value{y}, 0, func(bufs [][]float32, _ []float32, tm *team) {
		xa, xb, ys := ao.get(bufs), bo.get(bufs), bufs[y.id]
		for i := range offA {
			sgemm(m, n, k, xa[offA[i]:], k, xb[offB[i]:], n, ys[i*m*n:], n, false, threads)
		}
		if act := f.act; act != nil {
			act.apply(ys, ys)
		}
	})
	c.b.fusable[y.id] = f
	return []*value{y}, nil
}
