package native

import (
	"errors"
	"fmt"
	"sort"
)

func reshapeShape(in, target []int, allowZero bool) ([]int, error) {
	out := make([]int, len(target))
	infer := -1
	known := 1
	for k, d := range target {
		switch {
		case d == -1:
			if infer >= 0 {
				return nil, errors.New("reshape: more than one -1 in the target shape")
			}
			infer = k
			continue
		case d == 0 && !allowZero:
			if k >= len(in) {
				return nil, fmt.Errorf("reshape: 0 at position %d copies a dimension the input %s lacks", k, shapeString(in))
			}
			d = in[k]
		case d < 0:
			return nil, fmt.Errorf("reshape: invalid dimension %d", d)
		}
		out[k] = d
		if d > 0 && known > maxElements/d {
			return nil, errors.New("reshape: target shape too large")
		}
		known *= d
	}
	total := prod(in)
	if infer >= 0 {
		if known == 0 || total%known != 0 {
			return nil, fmt.Errorf("reshape: cannot reshape %s to %v", shapeString(in), target)
		}
		out[infer] = total / known
	} else if known != total {
		return nil, fmt.Errorf("reshape: cannot reshape %s (%d elements) to %v", shapeString(in), total, target)
	}
	return out, nil
}

func flattenShape(in []int, axis int) ([]int, error) {
	if axis < 0 {
		axis += len(in)
	}
	if axis < 0 || axis > len(in) {
		return nil, fmt.Errorf("flatten: axis out of range for rank %d", len(in))
	}
	return []int{prod(in[:axis]), prod(in[axis:])}, nil
}

func squeezeShape(in []int, axes []int) ([]int, error) {
	drop := make([]bool, len(in))
	if axes == nil {
		for k, d := range in {
			drop[k] = d == 1
		}
	}
	for _, a := range axes {
		a, err := normAxis(a, len(in))
		if err != nil {
			return nil, fmt.Errorf("squeeze: %w", err)
		}
		if in[a] != 1 {
			return nil, fmt.Errorf("squeeze: dimension %d of %s is not 1", a, shapeString(in))
		}
		drop[a] = true
	}
	out := []int{}
	for k, d := range in {
		if !drop[k] {
			out = append(out, d)
		}
	}
	return out, nil
}

func unsqueezeShape(in []int, axes []int) ([]int, error) {
	rank := len(in) + len(axes)
	ins := make([]bool, rank)
	for _, a := range axes {
		a, err := normAxis(a, rank)
		if err != nil {
			return nil, fmt.Errorf("unsqueeze: %w", err)
		}
		if ins[a] {
			return nil, errors.New("unsqueeze: repeated axis")
		}
		ins[a] = true
	}
	out := make([]int, 0, rank)
	k := 0
	for i := range rank {
		if ins[i] {
			out = append(out, 1)
		} else {
			out = append(out, in[k])
			k++
		}
	}
	return out, nil
}

// sliceSpec is a resolved Slice: per dimension the first index, the step
// and the count.
type sliceSpec struct {
	start, step, count []int
	shape              []int
}

func sliceParams(in []int, starts, ends, axes, steps []int) (*sliceSpec, error) {
	if len(starts) != len(ends) {
		return nil, errors.New("slice: starts and ends differ in length")
	}
	if axes == nil {
		axes = make([]int, len(starts))
		for k := range axes {
			axes[k] = k
		}
	}
	if steps == nil {
		steps = make([]int, len(starts))
		for k := range steps {
			steps[k] = 1
		}
	}
	if len(axes) != len(starts) || len(steps) != len(starts) {
		return nil, errors.New("slice: axes or steps differ in length from starts")
	}
	s := &sliceSpec{start: make([]int, len(in)), step: make([]int, len(in)), count: make([]int, len(in))}
	seen := make([]bool, len(in))
	for k, d := range in {
		s.step[k], s.count[k] = 1, d
	}
	for k, a := range axes {
		a, err := normAxis(a, len(in))
		if err != nil {
			return nil, fmt.Errorf("slice: %w", err)
		}
		if seen[a] {
			return nil, errors.New("slice: repeated axis")
		}
		seen[a] = true
		d, st := in[a], steps[k]
		if st == 0 {
			return nil, errors.New("slice: step 0")
		}
		b, e := starts[k], ends[k]
		if b < 0 {
			b += d
		}
		if e < 0 {
			e += d
		}
		if st > 0 {
			b, e = clamp(b, 0, d), clamp(e, 0, d)
			s.count[a] = max(0, (e-b+st-1)/st)
		} else {
			b, e = clamp(b, 0, d-1), clamp(e, -1, d-1)
			s.count[a] = max(0, (b-e-st-1)/(-st))
		}
		s.start[a], s.step[a] = b, st
	}
	s.shape = append([]int(nil), s.count...)
	return s, nil
}

func clamp(v, lo, hi int) int { return min(max(v, lo), hi) }

// index returns, for every output element of the slice, its source offset.
func (s *sliceSpec) index(in []int) []int {
	st := strides(in)
	n := prod(s.shape)
	out := make([]int, 0, n)
	idx := make([]int, len(in))
	for range n {
		off := 0
		for d := range in {
			off += (s.start[d] + idx[d]*s.step[d]) * st[d]
		}
		out = append(out, off)
		for d := len(in) - 1; d >= 0; d-- {
			idx[d]++
			if idx[d] < s.count[d] {
				break
			}
			idx[d] = 0
		}
	}
	return out
}

// gatherIndex returns the output shape and source offsets of Gather.
func gatherIndex(in []int, axis int, idx *tensor) ([]int, []int, error) {
	axis, err := normAxis(axis, len(in))
	if err != nil {
		return nil, nil, fmt.Errorf("gather: %w", err)
	}
	ids := idx.ints()
	for k, v := range ids {
		if v < -in[axis] || v >= in[axis] {
			return nil, nil, fmt.Errorf("gather: index %d out of range for dimension %d", v, in[axis])
		}
		if v < 0 {
			ids[k] = v + in[axis]
		}
	}
	shape := append(append(append([]int{}, in[:axis]...), idx.shape...), in[axis+1:]...)
	if _, err := numel(shape); err != nil {
		return nil, nil, err
	}
	outer, inner := prod(in[:axis]), prod(in[axis+1:])
	src := make([]int, 0, prod(shape))
	for o := range outer {
		for _, v := range ids {
			base := (o*in[axis] + v) * inner
			for i := range inner {
				src = append(src, base+i)
			}
		}
	}
	return shape, src, nil
}

// transposeIndex returns the output shape and source offsets of Transpose.
func transposeIndex(in []int, perm []int) ([]int, []int, error) {
	if perm == nil {
		perm = make([]int, len(in))
		for k := range perm {
			perm[k] = len(in) - 1 - k
		}
	}
	if len(perm) != len(in) {
		return nil, nil, fmt.Errorf("transpose: perm %v does not match rank %d", perm, len(in))
	}
	seen := make([]bool, len(in))
	shape := make([]int, len(in))
	st := strides(in)
	pst := make([]int, len(in))
	for k, p := range perm {
		if p < 0 || p >= len(in) || seen[p] {
			return nil, nil, fmt.Errorf("transpose: invalid perm %v", perm)
		}
		seen[p] = true
		shape[k] = in[p]
		pst[k] = st[p]
	}
	src := make([]int, 0, prod(shape))
	forEachIndex(shape, [][]int{pst}, func(_ int, offs []int) { src = append(src, offs[0]) })
	return shape, src, nil
}

// concatShape checks the inputs of Concat and returns the output shape.
func concatShape(shapes [][]int, axis int) ([]int, int, error) {
	if len(shapes) == 0 {
		return nil, 0, errors.New("concat: no inputs")
	}
	axis, err := normAxis(axis, len(shapes[0]))
	if err != nil {
		return nil, 0, fmt.Errorf("concat: %w", err)
	}
	out := append([]int{}, shapes[0]...)
	out[axis] = 0
	for _, s := range shapes {
		if len(s) != len(out) {
			return nil, 0, fmt.Errorf("concat: ranks differ: %s", joinShapes(shapes))
		}
		for d := range s {
			if d != axis && s[d] != out[d] {
				return nil, 0, fmt.Errorf("concat: shapes differ off axis %d: %s", axis, joinShapes(shapes))
			}
		}
		out[axis] += s[axis]
	}
	return out, axis, nil
}

// reduceAxes normalizes the axes of a reduction (all axes when empty) and
// returns them sorted, with the output shape.
func reduceAxes(in []int, axes []int, keep bool) ([]int, []int, error) {
	if len(axes) == 0 {
		axes = make([]int, len(in))
		for k := range axes {
			axes[k] = k
		}
	}
	red := make([]bool, len(in))
	for _, a := range axes {
		a, err := normAxis(a, len(in))
		if err != nil {
			return nil, nil, err
		}
		red[a] = true
	}
	var out, sorted []int
	for k, d := range in {
		switch {
		case !red[k]:
			out = append(out, d)
		case keep:
			out = append(out, 1)
		}
		if red[k] {
			sorted = append(sorted, k)
		}
	}
	sort.Ints(sorted)
	if out == nil {
		out = []int{}
	}
	return sorted, out, nil
}
