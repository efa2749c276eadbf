package native

import (
	"fmt"
	"strings"

	"github.com/splitstream/splitstream/models/internal/onnx"
)

// maxElements bounds any tensor the planner creates, so that a corrupt or
// hostile graph cannot ask for an absurd allocation.
const maxElements = onnx.MaxElements

// tensor is a value known when the plan is built: an initializer, a
// constant, or the result of shape arithmetic. Exactly one of f and i is
// non-nil: f for floating-point data, i for integer and boolean data.
type tensor struct {
	shape []int
	f     []float32
	i     []int64
}

func (t *tensor) isInt() bool { return t.f == nil }

func (t *tensor) len() int {
	if t.f != nil {
		return len(t.f)
	}
	return len(t.i)
}

// ints returns the tensor's values as ints (floats truncated).
func (t *tensor) ints() []int {
	out := make([]int, t.len())
	for k := range out {
		if t.f != nil {
			out[k] = int(t.f[k])
		} else {
			out[k] = int(t.i[k])
		}
	}
	return out
}

// floats returns the tensor's values as float32.
func (t *tensor) floats() []float32 {
	if t.f != nil {
		return t.f
	}
	out := make([]float32, len(t.i))
	for k, v := range t.i {
		out[k] = float32(v)
	}
	return out
}

func fromONNX(ot *onnx.Tensor) *tensor {
	t := &tensor{shape: make([]int, len(ot.Dims))}
	for k, d := range ot.Dims {
		t.shape[k] = int(d)
	}
	if ot.IsFloat() {
		t.f = ot.Float
		if t.f == nil {
			t.f = []float32{}
		}
	} else {
		t.i = ot.Int
		if t.i == nil {
			t.i = []int64{}
		}
	}
	return t
}

// numel returns the element count of shape, or an error when a dimension is
// negative or the count exceeds maxElements.
func numel(shape []int) (int, error) {
	n := 1
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("negative dimension in shape %v", shape)
		}
		if d > 0 && n > maxElements/d {
			return 0, fmt.Errorf("shape %v exceeds %d elements", shape, maxElements)
		}
		n *= d
	}
	return n, nil
}

func prod(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

func strides(shape []int) []int {
	s := make([]int, len(shape))
	k := 1
	for i := len(shape) - 1; i >= 0; i-- {
		s[i] = k
		k *= shape[i]
	}
	return s
}

func shapeString(s []int) string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = fmt.Sprint(d)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// normAxis maps a possibly negative axis into [0, rank).
func normAxis(axis, rank int) (int, error) {
	if axis < -rank || axis >= rank {
		return 0, fmt.Errorf("axis %d out of range for rank %d", axis, rank)
	}
	if axis < 0 {
		axis += rank
	}
	return axis, nil
}

// broadcastShape returns the NumPy-style broadcast of the shapes.
func broadcastShape(shapes ...[]int) ([]int, error) {
	rank := 0
	for _, s := range shapes {
		rank = max(rank, len(s))
	}
	out := make([]int, rank)
	for i := range out {
		out[i] = 1
	}
	for _, s := range shapes {
		off := rank - len(s)
		for i, d := range s {
			o := out[off+i]
			switch {
			case d == o || d == 1:
			case o == 1:
				out[off+i] = d
			default:
				return nil, fmt.Errorf("shapes %s cannot be broadcast", joinShapes(shapes))
			}
		}
	}
	return out, nil
}

func joinShapes(shapes [][]int) string {
	parts := make([]string, len(shapes))
	for i, s := range shapes {
		parts[i] = shapeString(s)
	}
	return strings.Join(parts, " and ")
}

// bstrides returns the strides of shape s broadcast to out (0 on broadcast
// dimensions).
func bstrides(s, out []int) []int {
	st := strides(s)
	bs := make([]int, len(out))
	off := len(out) - len(s)
	for i := range s {
		if s[i] != 1 {
			bs[off+i] = st[i]
		}
	}
	return bs
}

// forEachIndex calls f for every element of out with the linear offsets
// into inputs of the given broadcast strides.
func forEachIndex(out []int, bst [][]int, f func(o int, offs []int)) {
	n := prod(out)
	idx := make([]int, len(out))
	offs := make([]int, len(bst))
	for o := 0; o < n; o++ {
		f(o, offs)
		for d := len(out) - 1; d >= 0; d-- {
			idx[d]++
			for k := range offs {
				offs[k] += bst[k][d]
			}
			if idx[d] < out[d] {
				break
			}
			for k := range offs {
				offs[k] -= bst[k][d] * idx[d]
			}
			idx[d] = 0
		}
	}
}
