package native

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/splitstream/splitstream/models/internal/onnx"
)

// dynOps plan nodes with at least one input known only at run time (and,
// through folding, float nodes whose inputs are all constants).
var dynOps map[string]func(c *opCtx) ([]*value, error)

func init() {
	dynOps = map[string]func(c *opCtx) ([]*value, error){
		"Conv":               dConv,
		"ConvTranspose":      dConvTranspose,
		"BatchNormalization": dBatchNorm,
		"MaxPool":            dPool,
		"AveragePool":        dPool,
		"GlobalAveragePool":  dGlobalPool,
		"GlobalMaxPool":      dGlobalPool,
		"ReduceMean":         dReduce,
		"ReduceSum":          dReduce,
		"ReduceMax":          dReduce,
		"Gemm":               dGemm,
		"MatMul":             dMatMul,
		"Softmax":            dSoftmax,
		"Resize":             dResize,
		"Transpose":          dTranspose,
		"Concat":             dConcat,
		"Gather":             dGather,
		"Slice":              dSlice,
		"Expand":             dExpand,
		"Pad":                dPad,
		"Reshape":            dReshapeLike,
		"Flatten":            dReshapeLike,
		"Squeeze":            dReshapeLike,
		"Unsqueeze":          dReshapeLike,
		"Identity":           dIdentity,
		"Dropout":            dIdentity,
		"Cast":               dCast,
		"Shape":              dShape,
	}
	for name := range unaryOps {
		dynOps[name] = dUnary
	}
	for name := range binaryOps {
		dynOps[name] = dBinary
	}
}

func dIdentity(c *opCtx) ([]*value, error) {
	x, err := c.need(0)
	if err != nil {
		return nil, err
	}
	return []*value{x}, nil
}

func dCast(c *opCtx) ([]*value, error) {
	if to := c.attrInt("to", 0); !onnx.IsFloatType(to) {
		return nil, fmt.Errorf("cast of run-time data to %s is not supported", onnx.TypeName(to))
	}
	return dIdentity(c)
}

func dReshapeLike(c *opCtx) ([]*value, error) {
	shape, err := newShape(c)
	if err != nil {
		return nil, err
	}
	return []*value{c.b.alias(c.in[0], shape)}, nil
}

// gatherStep adds a step that builds y from x by source offsets (-1 for
// the fill value).
func (c *opCtx) gatherStep(x *value, shape []int, src []int, fill float32) ([]*value, error) {
	y, err := c.out(shape)
	if err != nil {
		return nil, err
	}
	idx := make([]int32, len(src))
	for k, s := range src {
		idx[k] = int32(s)
	}
	xo := opnd(x)
	c.b.add(c.n.OpType, []*value{x}, []*value{y}, 0, func(bufs [][]float32, _ []float32, tm *team) {
		xs, ys := xo.get(bufs), bufs[y.id]
		for k, s := range idx {
			if s < 0 {
				ys[k] = fill
			} else {
				ys[k] = xs[s]
			}
		}
	})
	return []*value{y}, nil
}

func dTranspose(c *opCtx) ([]*value, error) {
	x, err := c.need(0)
	if err != nil {
		return nil, err
	}
	shape, src, err := transposeIndex(x.shape, c.attrInts("perm"))
	if err != nil {
		return nil, err
	}
	return c.gatherStep(x, shape, src, 0)
}

func dGather(c *opCtx) ([]*value, error) {
	if err := c.needN(2); err != nil {
		return nil, err
	}
	idx, err := c.staticInput(1)
	if err != nil {
		return nil, err
	}
	shape, src, err := gatherIndex(c.in[0].shape, c.attrInt("axis", 0), idx)
	if err != nil {
		return nil, err
	}
	return c.gatherStep(c.in[0], shape, src, 0)
}

func dSlice(c *opCtx) ([]*value, error) {
	s, err := sliceOf(c)
	if err != nil {
		return nil, err
	}
	return c.gatherStep(c.in[0], s.shape, s.index(c.in[0].shape), 0)
}

func dExpand(c *opCtx) ([]*value, error) {
	if err := c.needN(2); err != nil {
		return nil, err
	}
	t, err := c.staticInput(1)
	if err != nil {
		return nil, err
	}
	shape, err := broadcastShape(c.in[0].shape, t.ints())
	if err != nil {
		return nil, err
	}
	if _, err := numel(shape); err != nil {
		return nil, err
	}
	src := make([]int, 0, prod(shape))
	forEachIndex(shape, [][]int{bstrides(c.in[0].shape, shape)}, func(_ int, offs []int) { src = append(src, offs[0]) })
	return c.gatherStep(c.in[0], shape, src, 0)
}

func dPad(c *opCtx) ([]*value, error) {
	x, err := c.need(0)
	if err != nil {
		return nil, err
	}
	if m := c.attrString("mode", "constant"); m != "constant" {
		return nil, fmt.Errorf("pad mode %q is not supported", m)
	}
	pads, err := c.intsInputOrAttr(1, "pads")
	if err != nil {
		return nil, err
	}
	r := len(x.shape)
	if len(pads) != 2*r {
		return nil, fmt.Errorf("pads %v do not match rank %d", pads, r)
	}
	if c.input(3) != nil {
		return nil, errors.New("pad axes input is not supported")
	}
	fill := c.attrFloat("value", 0)
	if c.input(2) != nil {
		f, err := c.staticFloat(2)
		if err != nil {
			return nil, err
		}
		if len(f) > 0 {
			fill = f[0]
		}
	}
	shape := make([]int, r)
	for d := range r {
		shape[d] = x.shape[d] + pads[d] + pads[d+r]
		if shape[d] < 0 {
			return nil, fmt.Errorf("pads %v make a negative dimension", pads)
		}
	}
	if _, err := numel(shape); err != nil {
		return nil, err
	}
	st := strides(x.shape)
	src := make([]int, 0, prod(shape))
	idx := make([]int, r)
	for range prod(shape) {
		off := 0
		for d := range r {
			i := idx[d] - pads[d]
			if i < 0 || i >= x.shape[d] {
				off = -1
				break
			}
			off += i * st[d]
		}
		src = append(src, off)
		for d := r - 1; d >= 0; d-- {
			idx[d]++
			if idx[d] < shape[d] {
				break
			}
			idx[d] = 0
		}
	}
	return c.gatherStep(x, shape, src, fill)
}

func dConcat(c *opCtx) ([]*value, error) {
	var shapes [][]int
	for k := range c.in {
		v, err := c.need(k)
		if err != nil {
			return nil, err
		}
		if v.static() && v.st.isInt() {
			return nil, errors.New("concat of integer constants with run-time data is not supported")
		}
		shapes = append(shapes, v.shape)
	}
	shape, axis, err := concatShape(shapes, c.attrInt("axis", 0))
	if err != nil {
		return nil, err
	}
	y, err := c.out(shape)
	if err != nil {
		return nil, err
	}
	outer := prod(shape[:axis])
	ops := make([]operand, len(c.in))
	blks := make([]int, len(c.in))
	total := 0
	for k, v := range c.in {
		ops[k], blks[k] = opnd(v), prod(v.shape[axis:])
		total += blks[k]
	}
	c.b.add("Concat", c.in, []*value{y}, 0, func(bufs [][]float32, _ []float32, tm *team) {
		ys := bufs[y.id]
		off := 0
		for k, o := range ops {
			xs, blk := o.get(bufs), blks[k]
			for i := range outer {
				copy(ys[i*total+off:i*total+off+blk], xs[i*blk:(i+1)*blk])
			}
			off += blk
		}
	})
	return []*value{y}, nil
}

func dBatchNorm(c *opCtx) ([]*value, error) {
	if err := c.needN(5); err != nil {
		return nil, err
	}
	if len(c.n.Outputs) > 1 || c.attrInt("training_mode", 0) != 0 {
		return nil, errors.New("training mode is not supported")
	}
	x := c.in[0]
	if len(x.shape) < 2 {
		return nil, fmt.Errorf("input rank %d: need at least 2", len(x.shape))
	}
	ch := x.shape[1]
	var p [4][]float32
	for k := range 4 {
		f, err := c.staticFloat(k + 1)
		if err != nil {
			return nil, err
		}
		if len(f) != ch {
			return nil, fmt.Errorf("parameter %d has %d elements for %d channels", k+1, len(f), ch)
		}
		p[k] = f
	}
	eps := float64(c.attrFloat("epsilon", 1e-5))
	scale, shift := make([]float32, ch), make([]float32, ch)
	for i := range ch {
		s := float64(p[0][i]) / math.Sqrt(float64(p[3][i])+eps)
		scale[i] = float32(s)
		shift[i] = float32(float64(p[1][i]) - float64(p[2][i])*s)
	}
	y, err := c.out(x.shape)
	if err != nil {
		return nil, err
	}
	inner := prod(x.shape[2:])
	planes := x.shape[0] * ch
	xo, threads := opnd(x), c.b.threads
	if planes*inner < parallelMin {
		threads = 1
	}
	c.b.add("BatchNormalization", c.in[:1], []*value{y}, 0, func(bufs [][]float32, _ []float32, tm *team) {
		xs, ys := xo.get(bufs), bufs[y.id]
		tm.parallelFor(planes, threads, func(lo, hi int) {
			for p := lo; p < hi; p++ {
				a, b := scale[p%ch], shift[p%ch]
				src, dst := xs[p*inner:(p+1)*inner], ys[p*inner:(p+1)*inner]
				for i, v := range src {
					dst[i] = v*a + b
				}
			}
		})
	})
	return []*value{y}, nil
}

func dSoftmax(c *opCtx) ([]*value, error) {
	x, err := c.need(0)
	if err != nil {
		return nil, err
	}
	r := len(x.shape)
	def := -1
	if c.opset < 13 {
		def = 1
	}
	axis, err := normAxis(c.attrInt("axis", def), max(r, 1))
	if err != nil {
		return nil, err
	}
	// Since opset 13 Softmax runs along one axis; before, over all axes
	// from axis on, flattened.
	outer, n, inner := prod(x.shape[:axis]), x.shape[axis], prod(x.shape[axis+1:])
	if c.opset < 13 {
		n, inner = prod(x.shape[axis:]), 1
	}
	y, err := c.out(x.shape)
	if err != nil {
		return nil, err
	}
	xo, threads := opnd(x), c.b.threads
	c.b.add("Softmax", c.in[:1], []*value{y}, 0, func(bufs [][]float32, _ []float32, tm *team) {
		xs, ys := xo.get(bufs), bufs[y.id]
		tm.parallelFor(outer*inner, threads, func(lo, hi int) {
			for q := lo; q < hi; q++ {
				base := (q/inner)*n*inner + q%inner
				m := float32(math.Inf(-1))
				for i := range n {
					m = max(m, xs[base+i*inner])
				}
				var s float64
				for i := range n {
					e := math.Exp(float64(xs[base+i*inner] - m))
					ys[base+i*inner] = float32(e)
					s += e
				}
				inv := 1 / s
				for i := range n {
					ys[base+i*inner] = float32(float64(ys[base+i*inner]) * inv)
				}
			}
		})
	})
	return []*value{y}, nil
}

func dReduce(c *opCtx) ([]*value, error) {
	x, err := c.need(0)
	if err != nil {
		return nil, err
	}
	var axes []int
	if c.input(1) != nil {
		t, err := c.staticInput(1)
		if err != nil {
			return nil, err
		}
		axes = t.ints()
	} else {
		axes = c.attrInts("axes")
	}
	if len(axes) == 0 && c.attrInt("noop_with_empty_axes", 0) != 0 {
		return dIdentity(c)
	}
	red, shape, err := reduceAxes(x.shape, axes, c.attrInt("keepdims", 1) != 0)
	if err != nil {
		return nil, err
	}
	y, err := c.out(shape)
	if err != nil {
		return nil, err
	}
	// Output offset of every input element: the input's strides with the
	// reduced axes zeroed, in the output's (keepdims) layout.
	kshape := append([]int{}, x.shape...)
	cnt := 1
	for _, a := range red {
		kshape[a] = 1
		cnt *= x.shape[a]
	}
	ost := bstrides(kshape, x.shape)
	dst := make([]int32, 0, prod(x.shape))
	forEachIndex(x.shape, [][]int{ost}, func(_ int, offs []int) { dst = append(dst, int32(offs[0])) })
	op := c.n.OpType
	xo := opnd(x)
	c.b.add(op, c.in[:1], []*value{y}, 0, func(bufs [][]float32, _ []float32, tm *team) {
		xs, ys := xo.get(bufs), bufs[y.id]
		if op == "ReduceMax" {
			for i := range ys {
				ys[i] = float32(math.Inf(-1))
			}
			for k, d := range dst {
				ys[d] = max(ys[d], xs[k])
			}
			return
		}
		clear(ys)
		for k, d := range dst {
			ys[d] += xs[k]
		}
		if op == "ReduceMean" {
			inv := 1 / float32(cnt)
			for i := range ys {
				ys[i] *= inv
			}
		}
	})
	return []*value{y}, nil
}

// Operators returns the ONNX operator types the engine plans, sorted
// (docs/BUNDLE.md lists them; the exporter checks graphs against that list).
func Operators() []string {
	seen := map[string]bool{}
	for name := range staticOps {
		seen[name] = true
	}
	for name := range dynOps {
		seen[name] = true
	}
	out := make([]string, 0, len(seen))
	for name := range seen {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}
