package native

import (
	"errors"
	"fmt"
	"math"

	"github.com/splitstream/splitstream/models/internal/onnx"
)

// staticOps evaluate nodes whose inputs are all known at plan time: the
// shape arithmetic of dynamic exports, constants and their conversions.
// They work on float and integer tensors alike.
var staticOps map[string]func(c *opCtx) ([]*value, error)

func init() {
	staticOps = map[string]func(c *opCtx) ([]*value, error){
		"Constant":        sConstant,
		"Identity":        sIdentity,
		"Shape":           dShape,
		"Cast":            sCast,
		"Reshape":         sReshapeLike,
		"Flatten":         sReshapeLike,
		"Squeeze":         sReshapeLike,
		"Unsqueeze":       sReshapeLike,
		"Gather":          sGather,
		"Slice":           sSlice,
		"Concat":          sConcat,
		"ConstantOfShape": sConstantOfShape,
		"Range":           sRange,
		"Where":           sWhere,
		"Expand":          sExpand,
		"Equal":           sBinary,
		"Less":            sBinary,
		"Greater":         sBinary,
		"Add":             sBinary,
		"Sub":             sBinary,
		"Mul":             sBinary,
		"Div":             sBinary,
		"Min":             sBinary,
		"Max":             sBinary,
		"Neg":             sUnary,
		"Floor":           sUnary,
		"Ceil":            sUnary,
		"Abs":             sUnary,
		"Not":             sUnary,
	}
}

func sConstant(c *opCtx) ([]*value, error) {
	if a := c.attr("value"); a != nil && a.T != nil {
		t := fromONNX(a.T)
		return []*value{{shape: t.shape, st: t, id: -1}}, nil
	}
	if a := c.attr("value_float"); a != nil {
		return []*value{static([]int{}, []float32{a.F}, nil)}, nil
	}
	if a := c.attr("value_floats"); a != nil {
		return []*value{static([]int{len(a.Floats)}, append([]float32{}, a.Floats...), nil)}, nil
	}
	if a := c.attr("value_int"); a != nil {
		return []*value{static([]int{}, nil, []int64{a.I})}, nil
	}
	if a := c.attr("value_ints"); a != nil {
		return []*value{static([]int{len(a.Ints)}, nil, append([]int64{}, a.Ints...))}, nil
	}
	return nil, errors.New("constant: no supported value attribute")
}

func sIdentity(c *opCtx) ([]*value, error) {
	v, err := c.need(0)
	return []*value{v}, err
}

// dShape works on static and dynamic inputs alike: shapes are always known.
func dShape(c *opCtx) ([]*value, error) {
	v, err := c.need(0)
	if err != nil {
		return nil, err
	}
	r := len(v.shape)
	start, end := c.attrInt("start", 0), c.attrInt("end", r)
	if start < 0 {
		start += r
	}
	if end < 0 {
		end += r
	}
	start, end = clamp(start, 0, r), clamp(end, 0, r)
	out := []int64{}
	for _, d := range v.shape[start:max(start, end)] {
		out = append(out, int64(d))
	}
	return []*value{static([]int{len(out)}, nil, out)}, nil
}

func sCast(c *opCtx) ([]*value, error) {
	t, err := c.staticInput(0)
	if err != nil {
		return nil, err
	}
	to := c.attrInt("to", 0)
	switch {
	case onnx.IsFloatType(to):
		f := t.floats()
		if t.f != nil {
			f = append([]float32{}, f...)
		}
		return []*value{static(t.shape, f, nil)}, nil
	case to == onnx.TypeBool:
		i := make([]int64, t.len())
		for k := range i {
			if (t.f != nil && t.f[k] != 0) || (t.f == nil && t.i[k] != 0) {
				i[k] = 1
			}
		}
		return []*value{static(t.shape, nil, i)}, nil
	case to == onnx.TypeString || to == 0:
		return nil, fmt.Errorf("cast: target type %s is not supported", onnx.TypeName(to))
	}
	i := make([]int64, t.len())
	for k := range i {
		if t.f != nil {
			i[k] = int64(t.f[k])
		} else {
			i[k] = t.i[k]
		}
	}
	return []*value{static(t.shape, nil, i)}, nil
}

// newShape computes the output shape of Reshape, Flatten, Squeeze and
// Unsqueeze, for static and dynamic inputs.
func newShape(c *opCtx) ([]int, error) {
	v, err := c.need(0)
	if err != nil {
		return nil, err
	}
	switch c.n.OpType {
	case "Reshape":
		t, err := c.staticInput(1)
		if err != nil {
			return nil, err
		}
		return reshapeShape(v.shape, t.ints(), c.attrInt("allowzero", 0) != 0)
	case "Flatten":
		return flattenShape(v.shape, c.attrInt("axis", 1))
	case "Squeeze":
		axes, err := c.intsInputOrAttr(1, "axes")
		if err != nil {
			return nil, err
		}
		return squeezeShape(v.shape, axes)
	default:
		axes, err := c.intsInputOrAttr(1, "axes")
		if err != nil {
			return nil, err
		}
		return unsqueezeShape(v.shape, axes)
	}
}

func sReshapeLike(c *opCtx) ([]*value, error) {
	shape, err := newShape(c)
	if err != nil {
		return nil, err
	}
	t := c.in[0].st
	return []*value{static(shape, t.f, t.i)}, nil
}

// take builds a tensor of the given shape from src offsets into t.
func take(t *tensor, shape []int, src []int) *value {
	if t.f != nil {
		f := make([]float32, len(src))
		for k, o := range src {
			f[k] = t.f[o]
		}
		return static(shape, f, nil)
	}
	i := make([]int64, len(src))
	for k, o := range src {
		i[k] = t.i[o]
	}
	return static(shape, nil, i)
}

func sGather(c *opCtx) ([]*value, error) {
	if err := c.needN(2); err != nil {
		return nil, err
	}
	shape, src, err := gatherIndex(c.in[0].shape, c.attrInt("axis", 0), c.in[1].st)
	if err != nil {
		return nil, err
	}
	return []*value{take(c.in[0].st, shape, src)}, nil
}

// sliceOf resolves the Slice parameters (inputs since opset 10, attributes
// before).
func sliceOf(c *opCtx) (*sliceSpec, error) {
	v, err := c.need(0)
	if err != nil {
		return nil, err
	}
	var starts, ends, axes, steps []int
	if len(c.in) >= 3 {
		for k, dst := range []*[]int{&starts, &ends, &axes, &steps} {
			if c.input(k+1) == nil {
				continue
			}
			t, err := c.staticInput(k + 1)
			if err != nil {
				return nil, err
			}
			*dst = t.ints()
		}
	} else {
		starts, ends, axes = c.attrInts("starts"), c.attrInts("ends"), c.attrInts("axes")
	}
	return sliceParams(v.shape, starts, ends, axes, steps)
}

func sSlice(c *opCtx) ([]*value, error) {
	s, err := sliceOf(c)
	if err != nil {
		return nil, err
	}
	return []*value{take(c.in[0].st, s.shape, s.index(c.in[0].shape))}, nil
}

func sConcat(c *opCtx) ([]*value, error) {
	var shapes [][]int
	isInt := false
	for k := range c.in {
		v, err := c.need(k)
		if err != nil {
			return nil, err
		}
		shapes = append(shapes, v.shape)
		isInt = isInt || v.st.isInt()
	}
	shape, axis, err := concatShape(shapes, c.attrInt("axis", 0))
	if err != nil {
		return nil, err
	}
	outer := prod(shape[:axis])
	var f []float32
	var i []int64
	for o := range outer {
		for _, v := range c.in {
			blk := prod(v.shape[axis:])
			if isInt {
				for _, x := range v.st.ints()[o*blk : (o+1)*blk] {
					i = append(i, int64(x))
				}
			} else {
				f = append(f, v.st.f[o*blk:(o+1)*blk]...)
			}
		}
	}
	if isInt && i == nil {
		i = []int64{}
	}
	if !isInt && f == nil {
		f = []float32{}
	}
	return []*value{static(shape, f, i)}, nil
}

func sConstantOfShape(c *opCtx) ([]*value, error) {
	t, err := c.staticInput(0)
	if err != nil {
		return nil, err
	}
	shape := t.ints()
	n, err := numel(shape)
	if err != nil {
		return nil, fmt.Errorf("constant of shape: %w", err)
	}
	if a := c.attr("value"); a != nil && a.T != nil {
		v := fromONNX(a.T)
		if v.len() != 1 {
			return nil, errors.New("constant of shape: value must hold one element")
		}
		if v.isInt() {
			i := make([]int64, n)
			for k := range i {
				i[k] = v.i[0]
			}
			return []*value{static(shape, nil, i)}, nil
		}
		f := make([]float32, n)
		for k := range f {
			f[k] = v.f[0]
		}
		return []*value{static(shape, f, nil)}, nil
	}
	return []*value{static(shape, make([]float32, n), nil)}, nil
}

func sRange(c *opCtx) ([]*value, error) {
	if err := c.needN(3); err != nil {
		return nil, err
	}
	s, l, d := c.in[0].st, c.in[1].st, c.in[2].st
	if s.len() != 1 || l.len() != 1 || d.len() != 1 {
		return nil, errors.New("range: start, limit and delta must be scalars")
	}
	if s.isInt() {
		a, b, st := s.i[0], l.i[0], d.i[0]
		if st == 0 {
			return nil, errors.New("range: delta 0")
		}
		n := max(0, int64(math.Ceil(float64(b-a)/float64(st))))
		if n > maxElements {
			return nil, errors.New("range: too many elements")
		}
		out := make([]int64, n)
		for k := range out {
			out[k] = a + int64(k)*st
		}
		return []*value{static([]int{int(n)}, nil, out)}, nil
	}
	a, b, st := s.f[0], l.floats()[0], d.floats()[0]
	if st == 0 {
		return nil, errors.New("range: delta 0")
	}
	n := max(0, math.Ceil(float64(b-a)/float64(st)))
	if n > maxElements || math.IsNaN(n) {
		return nil, errors.New("range: too many elements")
	}
	out := make([]float32, int(n))
	for k := range out {
		out[k] = a + float32(k)*st
	}
	return []*value{static([]int{int(n)}, out, nil)}, nil
}

func sWhere(c *opCtx) ([]*value, error) {
	if err := c.needN(3); err != nil {
		return nil, err
	}
	cond, x, y := c.in[0].st, c.in[1].st, c.in[2].st
	shape, err := broadcastShape(cond.shape, x.shape, y.shape)
	if err != nil {
		return nil, err
	}
	if _, err := numel(shape); err != nil {
		return nil, err
	}
	ci := cond.ints()
	bst := [][]int{bstrides(cond.shape, shape), bstrides(x.shape, shape), bstrides(y.shape, shape)}
	if x.isInt() && y.isInt() {
		out := make([]int64, prod(shape))
		forEachIndex(shape, bst, func(o int, offs []int) {
			if ci[offs[0]] != 0 {
				out[o] = x.i[offs[1]]
			} else {
				out[o] = y.i[offs[2]]
			}
		})
		return []*value{static(shape, nil, out)}, nil
	}
	xf, yf := x.floats(), y.floats()
	out := make([]float32, prod(shape))
	forEachIndex(shape, bst, func(o int, offs []int) {
		if ci[offs[0]] != 0 {
			out[o] = xf[offs[1]]
		} else {
			out[o] = yf[offs[2]]
		}
	})
	return []*value{static(shape, out, nil)}, nil
}

func sExpand(c *opCtx) ([]*value, error) {
	if err := c.needN(2); err != nil {
		return nil, err
	}
	shape, err := broadcastShape(c.in[0].shape, c.in[1].st.ints())
	if err != nil {
		return nil, err
	}
	if _, err := numel(shape); err != nil {
		return nil, err
	}
	src := make([]int, 0, prod(shape))
	forEachIndex(shape, [][]int{bstrides(c.in[0].shape, shape)}, func(_ int, offs []int) { src = append(src, offs[0]) })
	return []*value{take(c.in[0].st, shape, src)}, nil
}

func sBinary(c *opCtx) ([]*value, error) {
	if err := c.needN(2); err != nil {
		return nil, err
	}
	a, b := c.in[0].st, c.in[1].st
	shape, err := broadcastShape(a.shape, b.shape)
	if err != nil {
		return nil, err
	}
	if _, err := numel(shape); err != nil {
		return nil, err
	}
	bst := [][]int{bstrides(a.shape, shape), bstrides(b.shape, shape)}
	op := c.n.OpType
	cmp := op == "Equal" || op == "Less" || op == "Greater"
	if a.isInt() && b.isInt() || cmp {
		var af, bf []float32
		if !(a.isInt() && b.isInt()) {
			af, bf = a.floats(), b.floats()
		}
		out := make([]int64, prod(shape))
		var failed error
		forEachIndex(shape, bst, func(o int, offs []int) {
			if af != nil {
				out[o] = b2i(cmpF(op, af[offs[0]], bf[offs[1]]))
				return
			}
			x, y := a.i[offs[0]], b.i[offs[1]]
			switch op {
			case "Add":
				out[o] = x + y
			case "Sub":
				out[o] = x - y
			case "Mul":
				out[o] = x * y
			case "Div":
				if y == 0 {
					failed = errors.New("integer division by zero")
					return
				}
				out[o] = x / y
			case "Min":
				out[o] = min(x, y)
			case "Max":
				out[o] = max(x, y)
			case "Less":
				out[o] = b2i(x < y)
			case "Greater":
				out[o] = b2i(x > y)
			default:
				out[o] = b2i(x == y)
			}
		})
		if failed != nil {
			return nil, failed
		}
		return []*value{static(shape, nil, out)}, nil
	}
	af, bf := a.floats(), b.floats()
	out := make([]float32, prod(shape))
	forEachIndex(shape, bst, func(o int, offs []int) {
		x, y := af[offs[0]], bf[offs[1]]
		switch op {
		case "Add":
			out[o] = x + y
		case "Sub":
			out[o] = x - y
		case "Mul":
			out[o] = x * y
		case "Div":
			out[o] = x / y
		case "Min":
			out[o] = min(x, y)
		case "Max":
			out[o] = max(x, y)
		}
	})
	return []*value{static(shape, out, nil)}, nil
}

func cmpF(op string, x, y float32) bool {
	switch op {
	case "Less":
		return x < y
	case "Greater":
		return x > y
	}
	return x == y
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func sUnary(c *opCtx) ([]*value, error) {
	t, err := c.staticInput(0)
	if err != nil {
		return nil, err
	}
	op := c.n.OpType
	if t.isInt() {
		out := make([]int64, len(t.i))
		for k, x := range t.i {
			switch op {
			case "Neg":
				out[k] = -x
			case "Abs":
				out[k] = max(x, -x)
			case "Not":
				out[k] = b2i(x == 0)
			default:
				out[k] = x
			}
		}
		return []*value{static(t.shape, nil, out)}, nil
	}
	out := make([]float32, len(t.f))
	for k, x := range t.f {
		switch op {
		case "Neg":
			out[k] = -x
		case "Abs":
			out[k] = float32(math.Abs(float64(x)))
		case "Floor":
			out[k] = float32(math.Floor(float64(x)))
		case "Ceil":
			out[k] = float32(math.Ceil(float64(x)))
		case "Not":
			out[k] = float32(b2i(x == 0))
		}
	}
	return []*value{static(t.shape, out, nil)}, nil
}
