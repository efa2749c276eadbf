package native

import (
	"errors"
	"fmt"
)

// convGeom is a 2-D convolution's geometry (1-D ones use h = kh = 1).
type convGeom struct {
	n, c, h, w     int
	m, kh, kw, grp int
	sh, sw, dh, dw int
	pt, pl, pb, pr int
	oh, ow         int
}

// convAttrs reads kernel, strides, dilations and pads, resolving auto_pad,
// for the spatial input size h x w. transposed selects the ConvTranspose
// meaning of SAME padding (not supported there).
func (c *opCtx) convAttrs(g *convGeom, rank int) error {
	ks := c.attrInts("kernel_shape")
	if ks != nil && len(ks) != rank-2 {
		return fmt.Errorf("kernel_shape %v does not match input rank %d", ks, rank)
	}
	if ks != nil {
		if rank == 3 {
			g.kh, g.kw = 1, ks[0]
		} else {
			g.kh, g.kw = ks[0], ks[1]
		}
	}
	pair := func(name string, def int) (int, int, error) {
		v := c.attrInts(name)
		switch {
		case v == nil:
			return def, def, nil
		case len(v) != rank-2:
			return 0, 0, fmt.Errorf("%s %v does not match input rank %d", name, v, rank)
		case rank == 3:
			return def, v[0], nil
		}
		return v[0], v[1], nil
	}
	var err error
	if g.sh, g.sw, err = pair("strides", 1); err != nil {
		return err
	}
	if g.dh, g.dw, err = pair("dilations", 1); err != nil {
		return err
	}
	if g.sh < 1 || g.sw < 1 || g.dh < 1 || g.dw < 1 || g.kh < 1 || g.kw < 1 {
		return errors.New("kernel, strides and dilations must be positive")
	}
	pads := c.attrInts("pads")
	switch {
	case pads == nil:
	case len(pads) != 2*(rank-2):
		return fmt.Errorf("pads %v do not match input rank %d", pads, rank)
	case rank == 3:
		g.pl, g.pr = pads[0], pads[1]
	default:
		g.pt, g.pl, g.pb, g.pr = pads[0], pads[1], pads[2], pads[3]
	}
	switch ap := c.attrString("auto_pad", "NOTSET"); ap {
	case "NOTSET", "":
	case "VALID":
		g.pt, g.pl, g.pb, g.pr = 0, 0, 0, 0
	case "SAME_UPPER", "SAME_LOWER":
		same := func(in, k, s, d int) (int, int) {
			out := (in + s - 1) / s
			total := max(0, (out-1)*s+(k-1)*d+1-in)
			if ap == "SAME_UPPER" {
				return total / 2, total - total/2
			}
			return total - total/2, total / 2
		}
		g.pt, g.pb = same(g.h, g.kh, g.sh, g.dh)
		g.pl, g.pr = same(g.w, g.kw, g.sw, g.dw)
	default:
		return fmt.Errorf("auto_pad %q is not supported", ap)
	}
	if g.pt < 0 || g.pl < 0 || g.pb < 0 || g.pr < 0 {
		return errors.New("negative pads")
	}
	return nil
}

// spatial splits an NCHW (or NCL) shape.
func spatial(shape []int) (n, c, h, w int, err error) {
	switch len(shape) {
	case 3:
		return shape[0], shape[1], 1, shape[2], nil
	case 4:
		return shape[0], shape[1], shape[2], shape[3], nil
	}
	return 0, 0, 0, 0, fmt.Errorf("input rank %d: only 1-D and 2-D (rank 3 and 4) are supported", len(shape))
}

func outShape(rank, n, c, h, w int) []int {
	if rank == 3 {
		return []int{n, c, w}
	}
	return []int{n, c, h, w}
}

// validRange returns the output positions [lo, hi) of a row of length out
// whose input index o*stride - pad + off falls inside [0, in).
func validRange(out, stride, pad, off, in int) (int, int) {
	lo := ceilDiv(pad-off, stride)
	hi := floorDiv(in-1+pad-off, stride) + 1
	return clamp(lo, 0, out), clamp(hi, 0, out)
}

func floorDiv(a, b int) int {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func ceilDiv(a, b int) int { return -floorDiv(-a, b) }

// fusable is a step whose output can take an activation in place.
type fusable struct {
	act *activation
}

func dConv(c *opCtx) ([]*value, error) {
	if err := c.needN(2); err != nil {
		return nil, err
	}
	x := c.in[0]
	w, err := c.staticInput(1)
	if err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	g := convGeom{grp: c.attrInt("group", 1)}
	if g.n, g.c, g.h, g.w, err = spatial(x.shape); err != nil {
		return nil, err
	}
	if len(w.shape) != len(x.shape) {
		return nil, fmt.Errorf("weight shape %v does not match input %v", w.shape, x.shape)
	}
	g.m = w.shape[0]
	g.kh, g.kw = 1, w.shape[len(w.shape)-1]
	if len(w.shape) == 4 {
		g.kh = w.shape[2]
	}
	if err := c.convAttrs(&g, len(x.shape)); err != nil {
		return nil, err
	}
	if g.kh != w.shape[len(w.shape)-2] && len(w.shape) == 4 || g.kw != w.shape[len(w.shape)-1] {
		return nil, fmt.Errorf("kernel_shape does not match weights %v", w.shape)
	}
	if g.grp < 1 || g.c%g.grp != 0 || g.m%g.grp != 0 || w.shape[1] != g.c/g.grp {
		return nil, fmt.Errorf("group %d does not fit input channels %d and weights %v", g.grp, g.c, w.shape)
	}
	g.oh = (g.h+g.pt+g.pb-(g.kh-1)*g.dh-1)/g.sh + 1
	g.ow = (g.w+g.pl+g.pr-(g.kw-1)*g.dw-1)/g.sw + 1
	if g.oh < 1 || g.ow < 1 {
		return nil, fmt.Errorf("kernel larger than padded input %v", x.shape)
	}
	var bias []float32
	if c.input(2) != nil {
		if bias, err = c.staticFloat(2); err != nil {
			return nil, fmt.Errorf("bias: %w", err)
		}
		if len(bias) != g.m {
			return nil, fmt.Errorf("bias has %d elements for %d output channels", len(bias), g.m)
		}
	}
	y, err := c.out(outShape(len(x.shape), g.n, g.m, g.oh, g.ow))
	if err != nil {
		return nil, err
	}
	f := &fusable{}
	var run kernel
	scratch := 0
	if g.grp == g.c && g.m == g.c {
		run = depthwise(g, opnd(x), w.f, bias, y.id, f, c.b.threads)
	} else {
		run, scratch = convGemm(g, opnd(x), w.f, bias, y.id, f, c.b.threads)
	}
	c.b.add("Conv", c.in[:1], []*value{y}, scratch, run)
	c.b.fusable[y.id] = f
	return []*value{y}, nil
}

// convGemm lowers a convolution to matrix products per tile of output
// positions: im2col of the tile into per-worker scratch (not needed for
// 1x1 stride-1 unpadded kernels), then W (Mg x K) times the columns.
func convGemm(g convGeom, x operand, w, bias []float32, yid int, f *fusable, threads int) (kernel, int) {
	cg, mg := g.c/g.grp, g.m/g.grp
	k := cg * g.kh * g.kw
	ohw, hw := g.oh*g.ow, g.h*g.w
	pointwise := g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.pt+g.pl+g.pb+g.pr == 0
	// Tiles: the columns of one tile should stay in cache (about 512 KiB),
	// and there should be a few tiles per worker to balance the load.
	tile := max(64, (128<<10)/max(k, 1))
	tile = min(tile, max(16, ohw/(4*max(threads, 1))))
	tile = (tile + 15) &^ 15
	tile = min(tile, ohw)
	tiles := (ohw + tile - 1) / tile
	scratch := 0
	if !pointwise {
		scratch = threads * k * tile
	}
	items := g.n * g.grp * tiles
	return func(bufs [][]float32, sc []float32) {
		xs, ys := x.get(bufs), bufs[yid]
		act := f.act
		parallelWorkers(items, 1, threads, func(worker, lo, _ int) {
			t := lo % tiles
			gi := (lo / tiles) % g.grp
			n := lo / (tiles * g.grp)
			j0 := t * tile
			j1 := min(j0+tile, ohw)
			tn := j1 - j0
			xg := xs[(n*g.c+gi*cg)*hw:]
			yg := ys[(n*g.m+gi*mg)*ohw:]
			var b []float32
			ldb := ohw
			if pointwise {
				b = xg[j0:]
			} else {
				b = sc[worker*k*tile : worker*k*tile+k*tn]
				im2col(g, xg, cg, j0, j1, b)
				ldb = tn
			}
			sgemm(mg, tn, k, w[gi*mg*k:], k, b, ldb, yg[j0:], ohw, false, 1)
			if bias != nil || act != nil {
				for r := range mg {
					seg := yg[r*ohw+j0 : r*ohw+j1]
					if bias != nil {
						bv := bias[gi*mg+r]
						for i := range seg {
							seg[i] += bv
						}
					}
					if act != nil {
						act.apply(seg, seg)
					}
				}
			}
		})
	}, scratch
}

// im2col writes the columns j0..j1 (output positions) of the unrolled
// input x (cg channels) into col, row-major (k rows of j1-j0).
func im2col(g convGeom, x []float32, cg, j0, j1 int, col []float32) {
	tn := j1 - j0
	hw := g.h * g.w
	r := 0
	for ci := range cg {
		plane := x[ci*hw : (ci+1)*hw]
		for ky := range g.kh {
			for kx := range g.kw {
				row := col[r*tn : (r+1)*tn]
				r++
				xlo, xhi := validRange(g.ow, g.sw, g.pl, kx*g.dw, g.w)
				for j := j0; j < j1; {
					oy, ox0 := j/g.ow, j%g.ow
					ox1 := min(g.ow, ox0+j1-j)
					seg := row[j-j0 : j-j0+ox1-ox0]
					j += ox1 - ox0
					iy := oy*g.sh - g.pt + ky*g.dh
					if iy < 0 || iy >= g.h {
						clear(seg)
						continue
					}
					lo, hi := clamp(xlo, ox0, ox1), clamp(xhi, ox0, ox1)
					clear(seg[:lo-ox0])
					clear(seg[hi-ox0:])
					if lo >= hi {
						continue
					}
					src := plane[iy*g.w:]
					ix := lo*g.sw - g.pl + kx*g.dw
					dst := seg[lo-ox0 : hi-ox0]
					if g.sw == 1 {
						copy(dst, src[ix:ix+len(dst)])
						continue
					}
					for i := range dst {
						dst[i] = src[ix]
						ix += g.sw
					}
				}
			}
		}
	}
}

// depthwise runs a convolution with one input and one output channel per
// group directly, parallel over channels.
func depthwise(g convGeom, x operand, w, bias []float32, yid int, f *fusable, threads int) kernel {
	hw, ohw := g.h*g.w, g.oh*g.ow
	kk := g.kh * g.kw
	return func(bufs [][]float32, _ []float32) {
		xs, ys := x.get(bufs), bufs[yid]
		act := f.act
		parallelFor(g.n*g.c, threads, func(lo, hi int) {
			for p := lo; p < hi; p++ {
				ch := p % g.c
				in := xs[p*hw : (p+1)*hw]
				out := ys[p*ohw : (p+1)*ohw]
				b := float32(0)
				if bias != nil {
					b = bias[ch]
				}
				for i := range out {
					out[i] = b
				}
				for ky := range g.kh {
					for kx := range g.kw {
						wv := w[ch*kk+ky*g.kw+kx]
						xlo, xhi := validRange(g.ow, g.sw, g.pl, kx*g.dw, g.w)
						for oy := range g.oh {
							iy := oy*g.sh - g.pt + ky*g.dh
							if iy < 0 || iy >= g.h || xlo >= xhi {
								continue
							}
							row := out[oy*g.ow : (oy+1)*g.ow]
							src := in[iy*g.w:]
							ix := xlo*g.sw - g.pl + kx*g.dw
							for ox := xlo; ox < xhi; ox++ {
								row[ox] += wv * src[ix]
								ix += g.sw
							}
						}
					}
				}
				if act != nil {
					act.apply(out, out)
				}
			}
		})
	}
}

func dConvTranspose(c *opCtx) ([]*value, error) {
	if err := c.needN(2); err != nil {
		return nil, err
	}
	x := c.in[0]
	w, err := c.staticInput(1)
	if err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	g := convGeom{grp: c.attrInt("group", 1)}
	if g.n, g.c, g.h, g.w, err = spatial(x.shape); err != nil {
		return nil, err
	}
	if len(w.shape) != len(x.shape) || w.shape[0] != g.c || g.grp < 1 || g.c%g.grp != 0 {
		return nil, fmt.Errorf("weights %v and group %d do not fit input %v", w.shape, g.grp, x.shape)
	}
	g.m = w.shape[1] * g.grp
	g.kh, g.kw = 1, w.shape[len(w.shape)-1]
	if len(w.shape) == 4 {
		g.kh = w.shape[2]
	}
	if c.attr("output_shape") != nil {
		return nil, errors.New("output_shape is not supported; give pads and output_padding")
	}
	if ap := c.attrString("auto_pad", "NOTSET"); ap != "NOTSET" && ap != "" && ap != "VALID" {
		return nil, fmt.Errorf("auto_pad %q is not supported for ConvTranspose", ap)
	}
	if err := c.convAttrs(&g, len(x.shape)); err != nil {
		return nil, err
	}
	oph, opw := 0, 0
	if op := c.attrInts("output_padding"); op != nil {
		if len(op) != len(x.shape)-2 {
			return nil, fmt.Errorf("output_padding %v does not match rank", op)
		}
		opw = op[len(op)-1]
		if len(op) == 2 {
			oph = op[0]
		}
	}
	g.oh = g.sh*(g.h-1) + oph + (g.kh-1)*g.dh + 1 - g.pt - g.pb
	g.ow = g.sw*(g.w-1) + opw + (g.kw-1)*g.dw + 1 - g.pl - g.pr
	if g.oh < 1 || g.ow < 1 {
		return nil, fmt.Errorf("output size %dx%d is empty", g.oh, g.ow)
	}
	var bias []float32
	if c.input(2) != nil {
		if bias, err = c.staticFloat(2); err != nil {
			return nil, fmt.Errorf("bias: %w", err)
		}
		if len(bias) != g.m {
			return nil, fmt.Errorf("bias has %d elements for %d output channels", len(bias), g.m)
		}
	}
	y, err := c.out(outShape(len(x.shape), g.n, g.m, g.oh, g.ow))
	if err != nil {
		return nil, err
	}
	cg, mg := g.c/g.grp, g.m/g.grp
	kk := g.kh * g.kw
	rows := mg * kk
	// wt[gi] is (mg*kh*kw) x cg: the transposed weights of group gi.
	wt := make([]float32, g.grp*rows*cg)
	for gi := range g.grp {
		for ci := range cg {
			for r := range rows {
				wt[(gi*rows+r)*cg+ci] = w.f[((gi*cg+ci)*mg)*kk+r]
			}
		}
	}
	hw, ohw := g.h*g.w, g.oh*g.ow
	xo, threads := opnd(x), c.b.threads
	f := &fusable{}
	c.b.add("ConvTranspose", c.in[:1], []*value{y}, rows*hw, func(bufs [][]float32, sc []float32) {
		xs, ys := xo.get(bufs), bufs[y.id]
		col := sc[:rows*hw]
		act := f.act
		for n := range g.n {
			for gi := range g.grp {
				sgemm(rows, hw, cg, wt[gi*rows*cg:], cg, xs[(n*g.c+gi*cg)*hw:], hw, col, hw, false, threads)
				parallelFor(mg, threads, func(lo, hi int) {
					for m := lo; m < hi; m++ {
						oc := gi*mg + m
						out := ys[(n*g.m+oc)*ohw : (n*g.m+oc+1)*ohw]
						b := float32(0)
						if bias != nil {
							b = bias[oc]
						}
						for i := range out {
							out[i] = b
						}
						col2im(g, col[m*kk*hw:(m+1)*kk*hw], out)
						if act != nil {
							act.apply(out, out)
						}
					}
				})
			}
		}
	})
	c.b.fusable[y.id] = f
	return []*value{y}, nil
}

// col2im adds the kh*kw rows (each h*w) of one output channel's columns
// into its output plane.
func col2im(g convGeom, col, out []float32) {
	hw := g.h * g.w
	for ky := range g.kh {
		for kx := range g.kw {
			row := col[(ky*g.kw+kx)*hw:]
			// Output x = ix*sw - pl + kx*dw must lie in [0, ow).
			lo := clamp(ceilDiv(g.pl-kx*g.dw, g.sw), 0, g.w)
			hi := clamp(floorDiv(g.ow-1+g.pl-kx*g.dw, g.sw)+1, 0, g.w)
			for iy := range g.h {
				oy := iy*g.sh - g.pt + ky*g.dh
				if oy < 0 || oy >= g.oh || lo >= hi {
					continue
				}
				dst := out[oy*g.ow:]
				src := row[iy*g.w:]
				ox := lo*g.sw - g.pl + kx*g.dw
				for ix := lo; ix < hi; ix++ {
					dst[ox] += src[ix]
					ox += g.sw
				}
			}
		}
	}
}
