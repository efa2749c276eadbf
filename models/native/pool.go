package native

import (
	"fmt"
	"math"
)

func dPool(c *opCtx) ([]*value, error) {
	x, err := c.need(0)
	if err != nil {
		return nil, err
	}
	isMax := c.n.OpType == "MaxPool"
	if isMax && len(c.n.Outputs) > 1 && c.n.Outputs[1] != "" {
		return nil, fmt.Errorf("MaxPool indices output is not supported")
	}
	g := convGeom{}
	if g.n, g.c, g.h, g.w, err = spatial(x.shape); err != nil {
		return nil, err
	}
	if c.attrInts("kernel_shape") == nil {
		return nil, fmt.Errorf("kernel_shape is required")
	}
	if err := c.convAttrs(&g, len(x.shape)); err != nil {
		return nil, err
	}
	if !isMax && (g.dh != 1 || g.dw != 1) {
		return nil, fmt.Errorf("AveragePool with dilations is not supported")
	}
	ceil := c.attrInt("ceil_mode", 0) != 0
	size := func(in, pa, pb, k, s, d int) int {
		span := in + pa + pb - (k-1)*d - 1
		if !ceil {
			return floorDiv(span, s) + 1
		}
		out := ceilDiv(span, s) + 1
		if (out-1)*s >= in+pa {
			out--
		}
		return out
	}
	g.oh = size(g.h, g.pt, g.pb, g.kh, g.sh, g.dh)
	g.ow = size(g.w, g.pl, g.pr, g.kw, g.sw, g.dw)
	if g.oh < 1 || g.ow < 1 {
		return nil, fmt.Errorf("pooling window larger than padded input %v", x.shape)
	}
	includePad := c.attrInt("count_include_pad", 0) != 0
	y, err := c.out(outShape(len(x.shape), g.n, g.c, g.oh, g.ow))
	if err != nil {
		return nil, err
	}
	xo, threads := opnd(x), c.b.threads
	hw, ohw := g.h*g.w, g.oh*g.ow
	c.b.add(c.n.OpType, c.in[:1], []*value{y}, 0, func(bufs [][]float32, _ []float32, tm *team) {
		xs, ys := xo.get(bufs), bufs[y.id]
		tm.parallelFor(g.n*g.c, threads, func(lo, hi int) {
			for p := lo; p < hi; p++ {
				in, out := xs[p*hw:(p+1)*hw], ys[p*ohw:(p+1)*ohw]
				for oy := range g.oh {
					y0 := oy*g.sh - g.pt
					for ox := range g.ow {
						x0 := ox*g.sw - g.pl
						if isMax {
							m := float32(math.Inf(-1))
							for ky := range g.kh {
								iy := y0 + ky*g.dh
								if iy < 0 || iy >= g.h {
									continue
								}
								for kx := range g.kw {
									ix := x0 + kx*g.dw
									if ix >= 0 && ix < g.w {
										m = max(m, in[iy*g.w+ix])
									}
								}
							}
							out[oy*g.ow+ox] = m
							continue
						}
						ya, yb := max(y0, 0), min(y0+g.kh, g.h)
						xa, xb := max(x0, 0), min(x0+g.kw, g.w)
						var s float32
						for iy := ya; iy < yb; iy++ {
							for ix := xa; ix < xb; ix++ {
								s += in[iy*g.w+ix]
							}
						}
						cnt := (yb - ya) * (xb - xa)
						if includePad {
							cnt = (min(y0+g.kh, g.h+g.pb) - y0) * (min(x0+g.kw, g.w+g.pr) - x0)
						}
						out[oy*g.ow+ox] = s / float32(max(cnt, 1))
					}
				}
			}
		})
	})
	return []*value{y}, nil
}

func dGlobalPool(c *opCtx) ([]*value, error) {
	x, err := c.need(0)
	if err != nil {
		return nil, err
	}
	if len(x.shape) < 3 {
		return nil, fmt.Errorf("input rank %d: need at least 3", len(x.shape))
	}
	shape := append([]int{}, x.shape...)
	for k := 2; k < len(shape); k++ {
		shape[k] = 1
	}
	y, err := c.out(shape)
	if err != nil {
		return nil, err
	}
	planes, size := x.shape[0]*x.shape[1], prod(x.shape[2:])
	isMax := c.n.OpType == "GlobalMaxPool"
	xo, threads := opnd(x), c.b.threads
	c.b.add(c.n.OpType, c.in[:1], []*value{y}, 0, func(bufs [][]float32, _ []float32, tm *team) {
		xs, ys := xo.get(bufs), bufs[y.id]
		tm.parallelFor(planes, threads, func(lo, hi int) {
			for p := lo; p < hi; p++ {
				in := xs[p*size : (p+1)*size]
				if isMax {
					m := float32(math.Inf(-1))
					for _, v := range in {
						m = max(m, v)
					}
					ys[p] = m
					continue
				}
				var s float32
				for _, v := range in {
					s += v
				}
				ys[p] = s / float32(size)
			}
		})
	})
	return []*value{y}, nil
}
