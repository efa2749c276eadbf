package native

import (
	"fmt"
	"math"
)

// parallelMin is the element count below which elementwise kernels stay on
// one goroutine.
const parallelMin = 1 << 15

// unaryOp identifies an elementwise function of one input.
type unaryOp int

const (
	uRelu unaryOp = iota
	uLeakyRelu
	uSigmoid
	uClip
	uSqrt
	uExp
	uRound
	uNeg
	uAbs
	uTanh
	uFloor
	uCeil
	uErf
	uReciprocal
	uHardSigmoid
	uHardSwish
	uLog
	uIdentity
)

var unaryOps = map[string]unaryOp{
	"Relu": uRelu, "LeakyRelu": uLeakyRelu, "Sigmoid": uSigmoid, "Clip": uClip, "Sqrt": uSqrt,
	"Exp": uExp, "Round": uRound, "Neg": uNeg, "Abs": uAbs, "Tanh": uTanh, "Floor": uFloor,
	"Ceil": uCeil, "Erf": uErf, "Reciprocal": uReciprocal, "HardSigmoid": uHardSigmoid,
	"HardSwish": uHardSwish, "Log": uLog,
}

// activation is an elementwise function with its parameters; convolutions
// apply one to their output in place (fusion), elementwise nodes through
// dUnary.
type activation struct {
	op   unaryOp
	a, b float32 // LeakyRelu alpha; Clip min, max; HardSigmoid alpha, beta
}

func (c *opCtx) activation(op unaryOp) (activation, error) {
	act := activation{op: op}
	switch op {
	case uLeakyRelu:
		act.a = c.attrFloat("alpha", 0.01)
	case uHardSigmoid:
		act.a, act.b = c.attrFloat("alpha", 0.2), c.attrFloat("beta", 0.5)
	case uClip:
		act.a, act.b = float32(math.Inf(-1)), float32(math.Inf(1))
		if c.opset < 11 {
			act.a, act.b = c.attrFloat("min", act.a), c.attrFloat("max", act.b)
			break
		}
		for k, dst := range []*float32{&act.a, &act.b} {
			if c.input(k+1) == nil {
				continue
			}
			f, err := c.staticFloat(k + 1)
			if err != nil {
				return act, err
			}
			if len(f) != 1 {
				return act, fmt.Errorf("clip: bound must be a scalar, has %d elements", len(f))
			}
			*dst = f[0]
		}
	}
	return act, nil
}

// apply computes dst[i] = act(src[i]); dst and src may be the same slice.
func (act activation) apply(dst, src []float32) {
	switch act.op {
	case uRelu:
		for i, x := range src {
			dst[i] = max(x, 0)
		}
	case uLeakyRelu:
		for i, x := range src {
			if x < 0 {
				x *= act.a
			}
			dst[i] = x
		}
	case uSigmoid:
		for i, x := range src {
			dst[i] = float32(1 / (1 + math.Exp(-float64(x))))
		}
	case uClip:
		for i, x := range src {
			dst[i] = min(max(x, act.a), act.b)
		}
	case uSqrt:
		for i, x := range src {
			dst[i] = float32(math.Sqrt(float64(x)))
		}
	case uExp:
		for i, x := range src {
			dst[i] = float32(math.Exp(float64(x)))
		}
	case uRound:
		for i, x := range src {
			dst[i] = float32(math.RoundToEven(float64(x)))
		}
	case uNeg:
		for i, x := range src {
			dst[i] = -x
		}
	case uAbs:
		for i, x := range src {
			dst[i] = float32(math.Abs(float64(x)))
		}
	case uTanh:
		for i, x := range src {
			dst[i] = float32(math.Tanh(float64(x)))
		}
	case uFloor:
		for i, x := range src {
			dst[i] = float32(math.Floor(float64(x)))
		}
	case uCeil:
		for i, x := range src {
			dst[i] = float32(math.Ceil(float64(x)))
		}
	case uErf:
		for i, x := range src {
			dst[i] = float32(math.Erf(float64(x)))
		}
	case uReciprocal:
		for i, x := range src {
			dst[i] = 1 / x
		}
	case uHardSigmoid:
		for i, x := range src {
			dst[i] = min(max(act.a*x+act.b, 0), 1)
		}
	case uHardSwish:
		for i, x := range src {
			dst[i] = x * min(max(x/6+0.5, 0), 1)
		}
	case uLog:
		for i, x := range src {
			dst[i] = float32(math.Log(float64(x)))
		}
	case uIdentity:
		copy(dst, src)
	}
}

// epilogue sets dst[r*ds+j] = act(src[r*ss+j] + bias) for r < rows and
// j < cols (act nil: the identity): a convolution's bias and fused
// activation for one output channel, in one pass when act is ReLU.
func epilogue(dst []float32, ds int, src []float32, ss, rows, cols int, bias float32, act *activation) {
	relu := act != nil && act.op == uRelu
	biasRows(dst, ds, src, ss, rows, cols, bias, relu)
	if act == nil || relu {
		return
	}
	for r := range rows {
		d := dst[r*ds : r*ds+cols]
		act.apply(d, d)
	}
}

func dUnary(c *opCtx) ([]*value, error) {
	x, err := c.need(0)
	if err != nil {
		return nil, err
	}
	act, err := c.activation(unaryOps[c.n.OpType])
	if err != nil {
		return nil, err
	}
	if x.static() && x.st.isInt() {
		return nil, fmt.Errorf("%s on integer data is not supported", c.n.OpType)
	}
	// Fuse into the producing convolution or product when this node is
	// its only reader.
	if !x.static() {
		if f := c.b.fusable[x.id]; f != nil && f.act == nil && c.b.uses[c.n.Inputs[0]] == 1 {
			f.act = &act
			delete(c.b.fusable, x.id)
			return []*value{x}, nil
		}
	}
	y, err := c.out(x.shape)
	if err != nil {
		return nil, err
	}
	src, n, threads := opnd(x), prod(x.shape), c.b.threads
	c.b.add(c.n.OpType, c.in[:1], []*value{y}, 0, func(bufs [][]float32, _ []float32, tm *team) {
		s, d := src.get(bufs), bufs[y.id]
		tm.chunked(n, threads, func(lo, hi int) { act.apply(d[lo:hi], s[lo:hi]) })
	})
	return []*value{y}, nil
}

// binaryOp identifies an elementwise function of two inputs.
type binaryOp int

const (
	bAdd binaryOp = iota
	bSub
	bMul
	bDiv
	bPow
	bMin
	bMax
)

var binaryOps = map[string]binaryOp{"Add": bAdd, "Sub": bSub, "Mul": bMul, "Div": bDiv, "Pow": bPow, "Min": bMin, "Max": bMax}

// bcast is a broadcast plan for two inputs: the output is an outer loop
// over offsets and an inner run of length inner in which each input either
// advances (stride 1) or stays (stride 0).
type bcast struct {
	outer, inner int
	offA, offB   []int32
	sa, sb       int
}

func newBcast(a, b, out []int) bcast {
	sa, sb := bstrides(a, out), bstrides(b, out)
	// Coalesce adjacent dimensions that both inputs walk the same way.
	dims := []int{}
	var ca, cb []int
	for d := range out {
		if out[d] == 1 {
			continue
		}
		k := len(dims) - 1
		if k >= 0 && sa[d]*out[d] == ca[k] && sb[d]*out[d] == cb[k] {
			dims[k] *= out[d]
			ca[k], cb[k] = sa[d], sb[d]
			continue
		}
		dims, ca, cb = append(dims, out[d]), append(ca, sa[d]), append(cb, sb[d])
	}
	bc := bcast{inner: 1, sa: 1, sb: 1}
	if len(dims) > 0 {
		k := len(dims) - 1
		if (ca[k] == 0 || ca[k] == 1) && (cb[k] == 0 || cb[k] == 1) {
			bc.inner, bc.sa, bc.sb = dims[k], ca[k], cb[k]
			dims, ca, cb = dims[:k], ca[:k], cb[:k]
		}
	}
	bc.outer = prod(dims)
	bc.offA = make([]int32, 0, bc.outer)
	bc.offB = make([]int32, 0, bc.outer)
	forEachIndex(dims, [][]int{ca, cb}, func(_ int, offs []int) {
		bc.offA = append(bc.offA, int32(offs[0]))
		bc.offB = append(bc.offB, int32(offs[1]))
	})
	return bc
}

func dBinary(c *opCtx) ([]*value, error) {
	if err := c.needN(2); err != nil {
		return nil, err
	}
	a, b := c.in[0], c.in[1]
	for _, v := range []*value{a, b} {
		if v.static() && v.st.isInt() {
			return nil, fmt.Errorf("%s: integer operand %v mixed with run-time float data is not supported", c.n.OpType, v.shape)
		}
	}
	shape, err := broadcastShape(a.shape, b.shape)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.n.OpType, err)
	}
	y, err := c.out(shape)
	if err != nil {
		return nil, err
	}
	op := binaryOps[c.n.OpType]
	// Pow with a constant scalar exponent is common (x**2 in GDN) and has
	// cheap special cases.
	if op == bPow && b.static() && b.st.len() == 1 {
		act := activation{op: uIdentity}
		switch b.st.floats()[0] {
		case 2:
			op, b = bMul, a
		case 0.5:
			act.op = uSqrt
			fallthrough
		case 1:
			src, n, threads := opnd(a), prod(shape), c.b.threads
			c.b.add("Pow", []*value{a}, []*value{y}, 0, func(bufs [][]float32, _ []float32, tm *team) {
				s, d := src.get(bufs), bufs[y.id]
				tm.chunked(n, threads, func(lo, hi int) { act.apply(d[lo:hi], s[lo:hi]) })
			})
			return []*value{y}, nil
		}
	}
	bc := newBcast(a.shape, b.shape, shape)
	pa, pb, threads := opnd(a), opnd(b), c.b.threads
	if bc.inner*bc.outer < parallelMin {
		threads = 1
	}
	// An activation that only reads this output (the ReLU after a
	// residual Add) is applied to each chunk while it is in cache.
	f := &fusable{}
	c.b.add(c.n.OpType, []*value{a, b}, []*value{y}, 0, func(bufs [][]float32, _ []float32, tm *team) {
		x, z, d := pa.get(bufs), pb.get(bufs), bufs[y.id]
		act := f.act
		if bc.outer == 1 && bc.inner >= parallelMin && threads > 1 {
			tm.parallelFor(bc.inner, threads, func(lo, hi int) {
				xa, za := x, z
				if bc.sa == 1 {
					xa = x[lo:hi]
				}
				if bc.sb == 1 {
					za = z[lo:hi]
				}
				binLoop(op, d[lo:hi], xa, za, bc.sa, bc.sb)
				if act != nil {
					epilogue(d[lo:hi], 0, d[lo:hi], 0, 1, hi-lo, 0, act)
				}
			})
			return
		}
		tm.parallelFor(bc.outer, threads, func(lo, hi int) {
			for o := lo; o < hi; o++ {
				oa, ob := int(bc.offA[o]), int(bc.offB[o])
				seg := d[o*bc.inner : (o+1)*bc.inner]
				binLoop(op, seg, x[oa:], z[ob:], bc.sa, bc.sb)
				if act != nil {
					epilogue(seg, 0, seg, 0, 1, len(seg), 0, act)
				}
			}
		})
	})
	c.b.fusable[y.id] = f
	return []*value{y}, nil
}

// binLoop computes d[i] = x[i*sa] op z[i*sb] for sa, sb in {0, 1}.
func binLoop(op binaryOp, d, x, z []float32, sa, sb int) {
	n := len(d)
	switch {
	case sa == 1 && sb == 1:
		x, z = x[:n], z[:n]
		switch op {
		case bAdd:
			for i := range d {
				d[i] = x[i] + z[i]
			}
		case bSub:
			for i := range d {
				d[i] = x[i] - z[i]
			}
		case bMul:
			for i := range d {
				d[i] = x[i] * z[i]
			}
		case bDiv:
			for i := range d {
				d[i] = x[i] / z[i]
			}
		default:
			for i := range d {
				d[i] = scalarOp(op, x[i], z[i])
			}
		}
	case sa == 1:
		x = x[:n]
		v := z[0]
		switch op {
		case bAdd:
			for i := range d {
				d[i] = x[i] + v
			}
		case bSub:
			for i := range d {
				d[i] = x[i] - v
			}
		case bMul:
			for i := range d {
				d[i] = x[i] * v
			}
		case bDiv:
			for i := range d {
				d[i] = x[i] / v
			}
		default:
			for i := range d {
				d[i] = scalarOp(op, x[i], v)
			}
		}
	case sb == 1:
		z = z[:n]
		v := x[0]
		for i := range d {
			d[i] = scalarOp(op, v, z[i])
		}
	default:
		r := scalarOp(op, x[0], z[0])
		for i := range d {
			d[i] = r
		}
	}
}

func scalarOp(op binaryOp, x, z float32) float32 {
	switch op {
	case bAdd:
		return x + z
	case bSub:
		return x - z
	case bMul:
		return x * z
	case bDiv:
		return x / z
	case bPow:
		return float32(math.Pow(float64(x), float64(z)))
	case bMin:
		return min(x, z)
	}
	return max(x, z)
}
