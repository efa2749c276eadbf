package native

import (
	"fmt"
	"math"
)

// axisMap is how one resized axis reads its input: for output index o,
// linear interpolation between i0[o] and i1[o] with weight w[o] on i1
// (nearest: i0 only).
type axisMap struct {
	i0, i1 []int32
	w      []float32
}

func dResize(c *opCtx) ([]*value, error) {
	x, err := c.need(0)
	if err != nil {
		return nil, err
	}
	r := len(x.shape)
	var scales []float32
	var sizes []int
	scalesIdx, sizesIdx := 2, 3
	if c.opset < 11 {
		scalesIdx, sizesIdx = 1, -1
	}
	if v := c.input(scalesIdx); v != nil && prod(v.shape) > 0 {
		if scales, err = c.staticFloat(scalesIdx); err != nil {
			return nil, err
		}
	}
	if sizesIdx > 0 && c.input(sizesIdx) != nil && prod(c.input(sizesIdx).shape) > 0 {
		t, err := c.staticInput(sizesIdx)
		if err != nil {
			return nil, err
		}
		sizes = t.ints()
	}
	if c.attr("axes") != nil {
		return nil, fmt.Errorf("resize: the axes attribute is not supported")
	}
	out := make([]int, r)
	scale := make([]float64, r)
	switch {
	case sizes != nil && len(sizes) == r:
		for d := range r {
			out[d] = sizes[d]
			scale[d] = float64(sizes[d]) / float64(x.shape[d])
		}
	case scales != nil && len(scales) == r:
		for d := range r {
			scale[d] = float64(scales[d])
			out[d] = int(math.Floor(float64(x.shape[d]) * scale[d]))
		}
	default:
		return nil, fmt.Errorf("resize: need scales or sizes with %d entries", r)
	}
	for d := range r {
		if out[d] < 1 || !(scale[d] > 0) {
			return nil, fmt.Errorf("resize: invalid output size %v", out)
		}
		if d < r-2 && out[d] != x.shape[d] {
			return nil, fmt.Errorf("resize: only the last two axes may be resized (output %v from %v)", out, x.shape)
		}
	}
	if r < 2 {
		return nil, fmt.Errorf("resize: rank %d is not supported", r)
	}
	mode := c.attrString("mode", "nearest")
	ctm := c.attrString("coordinate_transformation_mode", "half_pixel")
	nm := c.attrString("nearest_mode", "round_prefer_floor")
	if mode != "nearest" && mode != "linear" {
		return nil, fmt.Errorf("resize: mode %q is not supported", mode)
	}
	maps := make([]axisMap, 2)
	for k := range 2 {
		d := r - 2 + k
		m, err := resizeAxis(x.shape[d], out[d], scale[d], mode, ctm, nm)
		if err != nil {
			return nil, err
		}
		maps[k] = m
	}
	y, err := c.out(out)
	if err != nil {
		return nil, err
	}
	ih, iw, oh, ow := x.shape[r-2], x.shape[r-1], out[r-2], out[r-1]
	planes := prod(x.shape[:r-2])
	my, mx := maps[0], maps[1]
	linear := mode == "linear"
	xo, threads := opnd(x), c.b.threads
	scratch := 0
	if linear {
		// Per worker: the input rows interpolated along x (ih x ow).
		scratch = threads * ih * ow
	}
	c.b.add("Resize", c.in[:1], []*value{y}, scratch, func(bufs [][]float32, sc []float32, tm *team) {
		xs, ys := xo.get(bufs), bufs[y.id]
		tm.parallelWorkers(planes, max(1, planes/threads), threads, func(worker, lo, hi int) {
			for p := lo; p < hi; p++ {
				in, o := xs[p*ih*iw:(p+1)*ih*iw], ys[p*oh*ow:(p+1)*oh*ow]
				if !linear {
					for oy := range oh {
						row := o[oy*ow : (oy+1)*ow]
						r0 := in[int(my.i0[oy])*iw:]
						for ox := range row {
							row[ox] = r0[mx.i0[ox]]
						}
					}
					continue
				}
				// Separable: each input row along x once, then each
				// output row as a blend of two of those; the same
				// operations in the same order as blending the four
				// neighbours directly.
				h := sc[worker*ih*ow : (worker+1)*ih*ow]
				for iy := range ih {
					r, hr := in[iy*iw:(iy+1)*iw], h[iy*ow:(iy+1)*ow]
					for ox := range hr {
						a, b := r[mx.i0[ox]], r[mx.i1[ox]]
						hr[ox] = a + mx.w[ox]*(b-a)
					}
				}
				for oy := range oh {
					row := o[oy*ow : (oy+1)*ow]
					top, bot := h[int(my.i0[oy])*ow:][:ow], h[int(my.i1[oy])*ow:][:ow]
					lerp(row, top, bot, my.w[oy])
				}
			}
		})
	})
	return []*value{y}, nil
}

// resizeAxis maps each output index of one axis to its input position.
func resizeAxis(in, out int, scale float64, mode, ctm, nm string) (axisMap, error) {
	m := axisMap{i0: make([]int32, out), i1: make([]int32, out), w: make([]float32, out)}
	for o := range out {
		var xf float64
		switch ctm {
		case "half_pixel":
			xf = (float64(o)+0.5)/scale - 0.5
		case "pytorch_half_pixel":
			if out > 1 {
				xf = (float64(o)+0.5)/scale - 0.5
			}
		case "align_corners":
			if out > 1 {
				xf = float64(o) * float64(in-1) / float64(out-1)
			}
		case "asymmetric":
			xf = float64(o) / scale
		case "tf_half_pixel_for_nn":
			xf = (float64(o) + 0.5) / scale
		default:
			return m, fmt.Errorf("resize: coordinate_transformation_mode %q is not supported", ctm)
		}
		if mode == "nearest" {
			var i float64
			switch nm {
			case "round_prefer_floor":
				i = math.Ceil(xf - 0.5)
			case "round_prefer_ceil":
				i = math.Floor(xf + 0.5)
			case "floor":
				i = math.Floor(xf)
			case "ceil":
				i = math.Ceil(xf)
			default:
				return m, fmt.Errorf("resize: nearest_mode %q is not supported", nm)
			}
			m.i0[o] = int32(clamp(int(i), 0, in-1))
			continue
		}
		xf = math.Max(0, math.Min(xf, float64(in-1)))
		i0 := int(math.Floor(xf))
		i1 := min(i0+1, in-1)
		m.i0[o], m.i1[o], m.w[o] = int32(i0), int32(i1), float32(xf-float64(i0))
	}
	return m, nil
}
