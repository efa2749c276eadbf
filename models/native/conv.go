package native

import (
	"errors"
	"fmt"

	"github.com/splitstream/splitstream/models/native/internal/gemm"
)

// convGeom is a 2-D convolution's geometry (1-D ones use h = kh = 1).
type convGeom struct {
	n, c, h, w     int
	m, kh, kw, grp int
	sh, sw, dh, dw int
	pt, pl, pb, pr int
	oh, ow         int
}

// convAttrs reads kernel, strides, dilations and pads into g, resolving
// auto_pad for the spatial input size g.h x g.w (ConvTranspose rejects SAME
// padding before calling it).
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
	wv, err := c.need(1)
	if err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	// A weight computed in the graph (dynamic convolution's per-sample kernel,
	// train/dynconv.py) is read at run time; its shape is known now.
	w := wv.st
	if w == nil {
		w = &tensor{shape: wv.shape}
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
	variant := "im2col"
	if !wv.static() {
		if g.grp != 1 {
			return nil, fmt.Errorf("weights computed at run time need group 1, not %d", g.grp)
		}
		run, scratch = convRuntimeWeights(g, opnd(x), wv.id, bias, y.id, f, c.b.threads)
		variant = "run-time weights"
	} else if g.grp == g.c && g.m == g.c {
		run, variant = depthwise(g, opnd(x), w.f, bias, y.id, f, c.b.threads), "depthwise"
	} else {
		if useShifted(g) {
			sh := newShifted(g, w.f, c.b.threads)
			run, scratch = sh.kernel(opnd(x), bias, y.id, f, c.b.threads), sh.size
			variant = "shifted"
			if sh.wt != nil {
				variant = "shifted, channels as columns"
			}
		} else {
			run, scratch = convGemm(g, opnd(x), w.f, bias, y.id, f, c.b.threads)
		}
	}
	c.b.add("Conv", c.in[:2], []*value{y}, scratch, run)
	flops := 2 * g.n * g.m * g.oh * g.ow * (g.c / g.grp) * g.kh * g.kw
	c.b.describe(fmt.Sprintf("k%dx%d s%d g%d %s %.1f MFLOP", g.kh, g.kw, g.sh, g.grp, variant, float64(flops)/1e6))
	c.b.fusable[y.id] = f
	return []*value{y}, nil
}

// convGemm lowers a convolution to matrix products per tile of output
// positions: im2col of the tile into per-worker scratch (not needed for
// 1x1 stride-1 unpadded kernels), then W (Mg x K) times the columns.
//
// Strided kernels first split each input plane into stride_h x stride_w
// phase planes (phase (ry, rx) holds x[sh*a+ry][sw*b+rx]), so that every
// im2col row is a run of unit-stride copies.
func convGemm(g convGeom, x operand, w, bias []float32, yid int, f *fusable, threads int) (kernel, int) {
	cg, mg := g.c/g.grp, g.m/g.grp
	k := cg * g.kh * g.kw
	ohw := g.oh * g.ow
	pointwise := g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.pt+g.pl+g.pb+g.pr == 0
	// Tiles: the columns of one tile should stay in cache; with more
	// threads, a few items per worker (splitWork).
	sp := splitWork(mg, ohw, k, threads, max(64, (512<<10)/4/max(k, 1)))
	src := newPlanes(g)
	scratch := src.size
	if !pointwise {
		scratch += threads * k * sp.tile
	}
	per := sp.items()
	items := g.n * g.grp * per
	packed := make([][]*gemm.PackedA, g.grp)
	for gi := range packed {
		packed[gi] = sp.packBands(w[gi*mg*k:], k, k)
	}
	return func(bufs [][]float32, sc []float32, tm *team) {
		xs, ys := x.get(bufs), bufs[yid]
		act := f.act
		planes := src.prepare(xs, sc[:src.size], tm, threads)
		cols := sc[src.size:]
		tm.parallelWorkers(items, 1, threads, func(worker, lo, _ int) {
			r0, r1, j0, j1 := sp.item(lo % per)
			gi := (lo / per) % g.grp
			n := lo / (per * g.grp)
			tn := j1 - j0
			yg := ys[(n*g.m+gi*mg)*ohw:]
			var b []float32
			ldb := ohw
			if pointwise {
				b = xs[(n*g.c+gi*cg)*ohw+j0:]
			} else {
				b = cols[worker*k*sp.tile : worker*k*sp.tile+k*tn]
				src.im2col(planes, n*g.c+gi*cg, cg, j0, j1, b)
				ldb = tn
			}
			gemm.SgemmPacked(packed[gi][r0/sp.band], tn, b, ldb, yg[r0*ohw+j0:], ohw, false, 1)
			if bias != nil || act != nil {
				for r := r0; r < r1; r++ {
					seg := yg[r*ohw+j0 : r*ohw+j1]
					bv := float32(0)
					if bias != nil {
						bv = bias[gi*mg+r]
					}
					epilogue(seg, 0, seg, 0, 1, tn, bv, act)
				}
			}
		})
	}, scratch
}

// convRuntimeWeights is convGemm (group 1) for a weight that is a value of
// the graph rather than a constant: the weight matrix (M x C*kh*kw, row
// major as ONNX lays it out) is read from its buffer at every run and used
// unpacked, so nothing about it is prepared at plan time.
func convRuntimeWeights(g convGeom, x operand, wid int, bias []float32, yid int, f *fusable, threads int) (kernel, int) {
	k := g.c * g.kh * g.kw
	ohw := g.oh * g.ow
	sp := splitWork(g.m, ohw, k, threads, max(64, (512<<10)/4/max(k, 1)))
	src := newPlanes(g)
	scratch := src.size + threads*k*sp.tile
	per := sp.items()
	return func(bufs [][]float32, sc []float32, tm *team) {
		xs, ws, ys := x.get(bufs), bufs[wid], bufs[yid]
		act := f.act
		planes := src.prepare(xs, sc[:src.size], tm, threads)
		cols := sc[src.size:]
		tm.parallelWorkers(g.n*per, 1, threads, func(worker, lo, _ int) {
			r0, r1, j0, j1 := sp.item(lo % per)
			n := lo / per
			tn := j1 - j0
			yn := ys[n*g.m*ohw:]
			b := cols[worker*k*sp.tile : worker*k*sp.tile+k*tn]
			src.im2col(planes, n*g.c, g.c, j0, j1, b)
			gemm.Sgemm(r1-r0, tn, k, ws[r0*k:], k, b, tn, yn[r0*ohw+j0:], ohw, false, 1)
			if bias != nil || act != nil {
				for r := r0; r < r1; r++ {
					seg := yn[r*ohw+j0 : r*ohw+j1]
					bv := float32(0)
					if bias != nil {
						bv = bias[r]
					}
					epilogue(seg, 0, seg, 0, 1, tn, bv, act)
				}
			}
		})
	}, scratch
}

// planes is how im2col reads a convolution's input: each input plane as
// sh*sw phase planes of ph x pw (one plane of h x w when unstrided).
type planes struct {
	g      convGeom
	ph, pw int
	size   int // scratch floats for the phase planes (0 when unstrided)
}

func newPlanes(g convGeom) planes {
	p := planes{g: g, ph: g.h, pw: g.w}
	if g.sh > 1 || g.sw > 1 {
		p.ph, p.pw = ceilDiv(g.h, g.sh), ceilDiv(g.w, g.sw)
		p.size = g.n * g.c * g.sh * g.sw * p.ph * p.pw
	}
	return p
}

// prepare splits x into phase planes in buf, or returns x when unstrided.
func (p planes) prepare(x, buf []float32, tm *team, threads int) []float32 {
	if p.size == 0 {
		return x
	}
	g := p.g
	hw, pp := g.h*g.w, p.ph*p.pw
	tm.parallelFor(g.n*g.c, threads, func(lo, hi int) {
		for c := lo; c < hi; c++ {
			in := x[c*hw : (c+1)*hw]
			for ry := range g.sh {
				for rx := range g.sw {
					out := buf[((c*g.sh+ry)*g.sw+rx)*pp:][:pp]
					for a := range p.ph {
						row := out[a*p.pw : (a+1)*p.pw]
						iy := a*g.sh + ry
						if iy >= g.h {
							clear(row)
							continue
						}
						src := in[iy*g.w : (iy+1)*g.w]
						n := clamp(ceilDiv(g.w-rx, g.sw), 0, p.pw)
						clear(row[n:])
						if g.sw == 1 {
							copy(row[:n], src[min(rx, len(src)):])
							continue
						}
						if g.sw == 2 {
							gather2(row[:n], src[min(rx, len(src)):max(rx+2*n-1, min(rx, len(src)))])
							continue
						}
						for b := range row[:n] {
							row[b] = src[b*g.sw+rx]
						}
					}
				}
			}
		}
	})
	return buf
}

// im2col writes the columns j0..j1 (output positions) of the unrolled
// input (cg channels from channel c0 of the prepared planes) into col,
// row-major (cg*kh*kw rows of j1-j0).
func (p planes) im2col(src []float32, c0, cg, j0, j1 int, col []float32) {
	g := p.g
	tn := j1 - j0
	pp := p.ph * p.pw
	r := 0
	for ci := range cg {
		for ky := range g.kh {
			offy := ky*g.dh - g.pt
			ry, qy := offy-floorDiv(offy, g.sh)*g.sh, floorDiv(offy, g.sh)
			for kx := range g.kw {
				offx := kx*g.dw - g.pl
				rx, qx := offx-floorDiv(offx, g.sw)*g.sw, floorDiv(offx, g.sw)
				plane := src[(((c0+ci)*g.sh+ry)*g.sw+rx)*pp:][:pp]
				row := col[r*tn : (r+1)*tn]
				r++
				// Output x reads plane column ox+qx, valid in [0, pw).
				xlo, xhi := clamp(-qx, 0, g.ow), clamp(p.pw-qx, 0, g.ow)
				oy, ox0 := j0/g.ow, j0%g.ow
				for j := j0; j < j1; oy, ox0 = oy+1, 0 {
					ox1 := min(g.ow, ox0+j1-j)
					seg := row[j-j0 : j-j0+ox1-ox0]
					j += ox1 - ox0
					a := oy + qy
					if a < 0 || a >= p.ph {
						for i := range seg {
							seg[i] = 0
						}
						continue
					}
					lo, hi := max(xlo, ox0), min(xhi, ox1)
					if lo >= hi {
						for i := range seg {
							seg[i] = 0
						}
						continue
					}
					for i := range seg[:lo-ox0] {
						seg[i] = 0
					}
					for i := hi - ox0; i < len(seg); i++ {
						seg[i] = 0
					}
					base := a*p.pw + qx
					copy(seg[lo-ox0:hi-ox0], plane[base+lo:base+hi])
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
	return func(bufs [][]float32, _ []float32, tm *team) {
		xs, ys := x.get(bufs), bufs[yid]
		act := f.act
		tm.parallelFor(g.n*g.c, threads, func(lo, hi int) {
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
	wv, err := c.need(1)
	if err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	// A weight computed in the graph (dynamic convolution's per-sample kernel,
	// train/dynconv.py) is read at run time; its shape is known now.
	w := wv.st
	if w == nil {
		w = &tensor{shape: wv.shape}
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
	packed := make([]*gemm.PackedA, g.grp)
	for gi := range packed {
		packed[gi] = gemm.PackA(rows, cg, wt[gi*rows*cg:], cg)
	}
	// Column chunks of the product, a few per worker.
	ctTile := max(16, (hw/(8*max(threads, 1))+15)&^15)
	f := &fusable{}
	c.b.add("ConvTranspose", c.in[:1], []*value{y}, rows*hw, func(bufs [][]float32, sc []float32, tm *team) {
		xs, ys := xo.get(bufs), bufs[y.id]
		col := sc[:rows*hw]
		act := f.act
		for n := range g.n {
			for gi := range g.grp {
				xg := xs[(n*g.c+gi*cg)*hw:]
				pa := packed[gi]
				tm.parallelWorkers(hw, ctTile, threads, func(_, lo, hi int) {
					gemm.SgemmPacked(pa, hi-lo, xg[lo:], hw, col[lo:], hw, false, 1)
				})
				tm.parallelFor(mg, threads, func(lo, hi int) {
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
