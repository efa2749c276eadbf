package native

import "github.com/splitstream/splitstream/models/native/internal/gemm"

// convShifted computes a convolution without im2col, as a sum of kh*kw
// products: for each kernel offset, W[:, :, ky, kx] (M x C) times the input
// shifted by that offset. The shifted inputs are views into zero-bordered
// phase planes (stride x stride per channel, as in planes), laid out so
// that every view is a plain matrix with the channel as row: the output is
// computed in rows of the planes' padded width and the valid columns are
// copied out at the end. The kh*kw products run as one of depth C*kh*kw
// whose B rows are gathered from the views by offset (an implicit
// im2col), so that C is read and written once per rank-kc block rather
// than once per kernel offset. It beats im2col (which writes the columns
// and then packs them again) for every ungrouped kernel larger than 1x1 at
// the shipped sizes, 3 input channels included (best of 300 runs, one
// thread: 24->32 3x3/2 on 48x48 81 against 130 us, 3->48 5x5/2 on 96x96
// 143 against 182 us).
type shifted struct {
	g                 convGeom
	qy0, qx0          int // smallest row and column shift
	ph, pw            int // padded phase plane size
	plane, chanStride int
	n                 int    // columns of the wide output: (oh-1)*pw + ow
	used              []bool // phase ry*sw+rx is read by some tap
	split             workSplit
	packed            []*gemm.PackedA // W by the split's row bands
	off               []int           // B row c*kh*kw + ky*kw + kx: its view's offset
	planesSize        int             // the zero-bordered phase planes
	size              int             // scratch: planes + per-worker output tiles
	// With output channels as the product's columns (chanCols): W^T
	// packed, and output position i's offset in an image's planes.
	wt   *gemm.PackedB
	pos  []int
	offs gemm.Offsets // off with its bounds
}

// useShifted reports whether convShifted suits g: one group, and not a
// plain 1x1 (which reads its input in place as B).
func useShifted(g convGeom) bool {
	pointwise := g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.pt+g.pl+g.pb+g.pr == 0
	return g.grp == 1 && !pointwise
}

// newShifted prepares the shifted convolution of g with weights w for
// threads workers, in the layout the cost rule (chanCols) picks.
func newShifted(g convGeom, w []float32, threads int) *shifted {
	wide := shiftedGeom(g)
	if !chanCols(g, wide.n) {
		wide.layoutWide(w, threads)
		return wide
	}
	return newShiftedCols(g, w, threads)
}

// newShiftedCols prepares the shifted convolution of g with output
// channels as the product's columns. Its rows, the output positions, are
// gathered by offset at any stride, so the planes are those of the
// unit-stride convolution whose outputs include g's: a strided input is
// not split into phase planes (for 64 channels of 12 x 12 at stride 2,
// 1792 phase-plane rows of 6 values against 832 rows of 12).
func newShiftedCols(g convGeom, w []float32, threads int) *shifted {
	unit := g
	unit.sh, unit.sw = 1, 1
	unit.oh, unit.ow = (g.oh-1)*g.sh+1, (g.ow-1)*g.sw+1
	s := shiftedGeom(unit)
	kk := g.kh * g.kw
	// W (M x C*kh*kw) is B^T. Items cut the channels first, then the
	// positions.
	ohw := g.oh * g.ow
	s.split = splitWork(ohw, g.m, g.c*kk, threads, g.m)
	s.wt = gemm.PackBT(g.c*kk, g.m, w, g.c*kk)
	s.offs = gemm.NewOffsets(s.off)
	s.pos = make([]int, ohw)
	for i := range s.pos {
		s.pos[i] = i/g.ow*g.sh*s.pw + i%g.ow*g.sw
	}
	s.size = s.planesSize + threads*s.split.band*s.split.tile
	return s
}

// shiftedGeom returns the shifted convolution of g without a layout: its
// planes and the offsets of their views.
func shiftedGeom(g convGeom) *shifted {
	s := &shifted{g: g}
	qy := func(ky int) int { return floorDiv(ky*g.dh-g.pt, g.sh) }
	qx := func(kx int) int { return floorDiv(kx*g.dw-g.pl, g.sw) }
	s.qy0, s.qx0 = qy(0), qx(0)
	qy1, qx1 := qy(g.kh-1), qx(g.kw-1)
	s.ph = g.oh + qy1 - s.qy0
	s.pw = g.ow + qx1 - s.qx0
	s.plane = s.ph * s.pw
	s.chanStride = g.sh * g.sw * s.plane
	s.n = (g.oh-1)*s.pw + g.ow
	kk := g.kh * g.kw
	s.off = make([]int, g.c*kk)
	s.used = make([]bool, g.sh*g.sw)
	for c := range g.c {
		for ky := range g.kh {
			offy := ky*g.dh - g.pt
			qy := floorDiv(offy, g.sh)
			ry := offy - qy*g.sh
			for kx := range g.kw {
				offx := kx*g.dw - g.pl
				qx := floorDiv(offx, g.sw)
				rx := offx - qx*g.sw
				s.used[ry*g.sw+rx] = true
				s.off[c*kk+ky*g.kw+kx] = c*s.chanStride + (ry*g.sw+rx)*s.plane + (qy-s.qy0)*s.pw + (qx - s.qx0)
			}
		}
	}
	// The slack after the last plane lets the GEMM read whole panels of
	// the last rows in place (gemm's microRows) rather than pack them.
	s.planesSize = g.n*g.c*s.chanStride + 64
	return s
}

// layoutWide packs w for threads workers with output channels as the
// product's rows and the wide output's columns as its columns.
func (s *shifted) layoutWide(w []float32, threads int) {
	g := s.g
	kk := g.kh * g.kw
	// Column tiles of the wide output: small enough that a tile of C
	// stays in cache across the kh*kw accumulations.
	s.split = splitWork(g.m, s.n, g.c*kk, threads, (256<<10)/4/g.m)
	// W is M x (C*kh*kw) as stored; its column c*kk + ky*kw + kx meets
	// the view of channel c shifted by (ky, kx).
	s.packed = s.split.packBands(w, g.c*kk, g.c*kk)
	s.size = s.planesSize + threads*s.split.band*s.split.tile
}

// chanCols reports whether the shifted convolution of g, whose wide
// output has wide columns per output channel, wastes less of the
// micro-kernel's tiles with the output channels as the product's columns
// and the output positions as its rows: a small map with many channels
// (6 x 6 with 128: 36 positions fill 90% of 5 tiles of 8 rows, and 128
// channels 4 whole tiles of 32, where the wide layout computes 48 columns
// for 36 outputs). The transposed layout costs a transposing write-back,
// so it must save at least a tenth of the slots; and the kernel must read
// the gathered rows in place.
func chanCols(g convGeom, wide int) bool {
	if !gemm.GatherInPlace() {
		return false
	}
	return 10*gemm.GatherSlots(g.oh*g.ow, g.m) <= 9*gemm.Slots(g.m, wide)
}

// prepare writes the zero-bordered phase planes of x into buf. The
// borders are a few values per row, zeroed by plain loops: memclr calls
// for one or two values cost more than the values.
func (s *shifted) prepare(x, buf []float32, tm *team, threads int) {
	g := s.g
	if g.n*g.c*g.h*g.w < parallelMin {
		// Small: on the caller, without a closure to allocate.
		s.fill(x, buf, 0, g.n*g.c)
		return
	}
	tm.parallelFor(g.n*g.c, threads, func(lo, hi int) { s.fill(x, buf, lo, hi) })
}

// fill writes the planes of input channels (times images) [lo, hi).
func (s *shifted) fill(x, buf []float32, lo, hi int) {
	g := s.g
	hw := g.h * g.w
	for c := lo; c < hi; c++ {
		in := x[c*hw : (c+1)*hw]
		for ry := range g.sh {
			for rx := range g.sw {
				if !s.used[ry*g.sw+rx] {
					continue // no tap reads it (a 1x1 stride-2 kernel reads one of four)
				}
				out := buf[c*s.chanStride+(ry*g.sw+rx)*s.plane:][:s.plane]
				off := s.qx0*g.sw + rx
				lo := clamp(ceilDiv(-off, g.sw), 0, s.pw)
				hi := clamp(floorDiv(g.w-1-off, g.sw)+1, lo, s.pw)
				for a := range s.ph {
					row := out[a*s.pw : (a+1)*s.pw]
					// Padded row a holds phase row a+qy0, i.e. input
					// row (a+qy0)*sh + ry; column b holds input
					// column (b+qx0)*sw + rx.
					iy := (a+s.qy0)*g.sh + ry
					if iy < 0 || iy >= g.h {
						zero(row)
						continue
					}
					src := in[iy*g.w : (iy+1)*g.w]
					zero(row[:lo])
					zero(row[hi:])
					seg := row[lo:hi]
					switch g.sw {
					case 1:
						copy(seg, src[lo+off:hi+off])
					case 2:
						if len(seg) > 0 {
							gather2(seg, src[lo*2+off:(hi-1)*2+off+1])
						}
					default:
						for b := range seg {
							seg[b] = src[(lo+b)*g.sw+off]
						}
					}
				}
			}
		}
	}
}

func (s *shifted) kernel(x operand, bias []float32, yid int, f *fusable, threads int) kernel {
	if s.wt != nil {
		return s.chanKernel(x, bias, yid, f, threads)
	}
	g := s.g
	ohw := g.oh * g.ow
	return func(bufs [][]float32, sc []float32, tm *team) {
		xs, ys := x.get(bufs), bufs[yid]
		act := f.act
		planes := sc[:s.planesSize]
		wide := sc[s.planesSize:s.size]
		s.prepare(xs, planes, tm, threads)
		clear(planes[s.planesSize-64:]) // the slack: zero, not stale
		sp := s.split
		per := sp.band * sp.tile
		tm.parallelWorkers(g.n*sp.items(), 1, threads, func(worker, item, _ int) {
			n := item / sp.items()
			r0, r1, j0, j1 := sp.item(item % sp.items())
			tn := j1 - j0
			c := wide[worker*per : worker*per+(r1-r0)*tn]
			pl := planes[n*g.c*s.chanStride:]
			gemm.SgemmPackedRows(s.packed[r0/sp.band], tn, pl[j0:], s.off, c, tn, false, 1)
			// Copy the valid columns out: wide column j is output
			// (j / pw, j % pw) when j % pw < ow.
			yb := ys[n*g.m*ohw:]
			for m := r0; m < r1; m++ {
				bv := float32(0)
				if bias != nil {
					bv = bias[m]
				}
				s.copyOut(yb[m*ohw:(m+1)*ohw], c[(m-r0)*tn:(m-r0+1)*tn], j0, bv, act)
			}
		})
	}
}

// chanKernel is kernel for the layout with output channels as columns
// (chanCols): each item computes positions [r0, r1) by channels [j0, j1)
// of C^T = im2col(X)^T * W^T, rows gathered from the planes, into its
// worker's tile, then writes them transposed into the NCHW output.
func (s *shifted) chanKernel(x operand, bias []float32, yid int, f *fusable, threads int) kernel {
	g := s.g // the unit-stride geometry: g.oh x g.ow is not the output's size
	ohw := len(s.pos)
	return func(bufs [][]float32, sc []float32, tm *team) {
		xs, ys := x.get(bufs), bufs[yid]
		act := f.act
		planes := sc[:s.planesSize]
		tiles := sc[s.planesSize:s.size]
		s.prepare(xs, planes, tm, threads)
		clear(planes[s.planesSize-64:])
		sp := s.split
		per := sp.band * sp.tile
		tm.parallelWorkers(g.n*sp.items(), 1, threads, func(worker, item, _ int) {
			n := item / sp.items()
			r0, r1, j0, j1 := sp.item(item % sp.items())
			ct := tiles[worker*per : worker*per+(r1-r0)*(j1-j0)]
			gemm.SgemmGatherA(planes[n*g.c*s.chanStride:], s.pos[r0:r1], s.offs, s.wt, j0, j1, ct, j1-j0)
			var b []float32
			if bias != nil {
				b = bias[j0:j1]
			}
			transposeOut(ys[(n*g.m+j0)*ohw+r0:], ohw, ct, r1-r0, j1-j0, b, act)
		})
	}
}

// transposeOut writes the rows x cols matrix src (positions by channels,
// row stride cols) into cols output planes of stride ohw from dst on,
// adding each channel's bias (none when bias is nil) and applying act.
func transposeOut(dst []float32, ohw int, src []float32, rows, cols int, bias []float32, act *activation) {
	relu := act != nil && act.op == uRelu
	for c := range cols {
		d := dst[c*ohw : c*ohw+rows]
		bv := float32(0)
		if bias != nil {
			bv = bias[c]
		}
		col := src[c:]
		if relu {
			for i := range d {
				d[i] = max(col[i*cols]+bv, 0)
			}
			continue
		}
		for i := range d {
			d[i] = col[i*cols] + bv
		}
		if act != nil {
			act.apply(d, d)
		}
	}
}

// copyOut writes the valid columns among wide columns [j0, j0+len(row))
// of one output channel, row, into its output plane out, adding bias and
// applying act: wide column j is output (j / pw, j % pw) when
// j % pw < ow. The output rows the tile covers whole go in one call.
func (s *shifted) copyOut(out, row []float32, j0 int, bias float32, act *activation) {
	g, pw := s.g, s.pw
	j1 := j0 + len(row)
	seg := func(oy, rows, lo, hi int) {
		// rows output rows from oy, columns [lo, hi) of each.
		dst := out[oy*g.ow+lo:]
		epilogue(dst, g.ow, row[oy*pw+lo-j0:], pw, rows, hi-lo, bias, act)
	}
	full0, full1 := ceilDiv(j0, pw), floorDiv(j1-g.ow, pw)+1 // whole rows [full0, full1)
	if full0 >= full1 {
		full0, full1 = -1, -1 // none: every row is partial
	}
	for oy := j0 / pw; oy*pw < j1; oy++ {
		if oy == full0 {
			seg(oy, full1-full0, 0, g.ow)
			oy = full1 - 1
			continue
		}
		lo, hi := max(j0-oy*pw, 0), min(j1-oy*pw, g.ow)
		if lo < hi {
			seg(oy, 1, lo, hi)
		}
	}
}

// zero sets s to zeros with a plain loop (see prepare).
func zero(s []float32) {
	for i := 0; i < len(s); i++ {
		s[i] = 0
	}
}
