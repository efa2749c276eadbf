package native

import (
	"fmt"

	"github.com/splitstream/splitstream/models/internal/onnx"
)

// opCtx is what an operator's planner sees: the node, its input values and
// the builder to add steps to.
type opCtx struct {
	b     *builder
	n     *onnx.Node
	in    []*value
	opset int64
}

// input returns input k, or nil when it is absent or omitted.
func (c *opCtx) input(k int) *value {
	if k < len(c.in) {
		return c.in[k]
	}
	return nil
}

func (c *opCtx) need(k int) (*value, error) {
	if v := c.input(k); v != nil {
		return v, nil
	}
	return nil, fmt.Errorf("input %d is missing", k)
}

// needN checks that at least n inputs are present.
func (c *opCtx) needN(n int) error {
	for k := range n {
		if c.input(k) == nil {
			return fmt.Errorf("input %d is missing", k)
		}
	}
	return nil
}

// staticInput returns input k's data, which must be known at plan time.
func (c *opCtx) staticInput(k int) (*tensor, error) {
	v, err := c.need(k)
	if err != nil {
		return nil, err
	}
	if !v.static() {
		return nil, fmt.Errorf("input %d (%s) must be a constant or computable from shapes; run-time values are not supported there", k, c.n.Inputs[k])
	}
	return v.st, nil
}

// staticFloat returns input k's float data, which must be known at plan time.
func (c *opCtx) staticFloat(k int) ([]float32, error) {
	t, err := c.staticInput(k)
	if err != nil {
		return nil, err
	}
	return t.floats(), nil
}

func (c *opCtx) attr(name string) *onnx.Attribute { return c.n.Attrs[name] }

func (c *opCtx) attrInt(name string, def int) int {
	if a := c.attr(name); a != nil {
		return int(a.I)
	}
	return def
}

func (c *opCtx) attrFloat(name string, def float32) float32 {
	if a := c.attr(name); a != nil {
		return a.F
	}
	return def
}

func (c *opCtx) attrString(name, def string) string {
	if a := c.attr(name); a != nil {
		return string(a.S)
	}
	return def
}

// attrInts returns an ints attribute, or nil when it is absent.
func (c *opCtx) attrInts(name string) []int {
	a := c.attr(name)
	if a == nil {
		return nil
	}
	out := make([]int, len(a.Ints))
	for k, v := range a.Ints {
		out[k] = int(v)
	}
	return out
}

// intsInputOrAttr reads a list given as input k (newer opsets) or as an
// attribute (older ones); nil when neither is present.
func (c *opCtx) intsInputOrAttr(k int, name string) ([]int, error) {
	if c.input(k) != nil {
		t, err := c.staticInput(k)
		if err != nil {
			return nil, err
		}
		return t.ints(), nil
	}
	return c.attrInts(name), nil
}

func (c *opCtx) out(shape []int) (*value, error) { return c.b.newDyn(shape) }

func static(shape []int, f []float32, i []int64) *value {
	return &value{shape: shape, st: &tensor{shape: shape, f: f, i: i}, id: -1}
}

// operand names a kernel input: static data, or a dynamic buffer by id.
type operand struct {
	id   int
	data []float32
}

func opnd(v *value) operand {
	if v.static() {
		return operand{id: -1, data: v.st.floats()}
	}
	return operand{id: v.id}
}

func (o operand) get(bufs [][]float32) []float32 {
	if o.data != nil || o.id < 0 {
		return o.data
	}
	return bufs[o.id]
}
