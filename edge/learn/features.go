package learn

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/splitstream/splitstream/codec"
)

// Stat is a set of per-region statistics of one channel.
type Stat uint8

// The statistics. Std is the population standard deviation.
const (
	Mean Stat = 1 << iota
	Max
	Std
	allStats = Mean | Max | Std
)

func (s Stat) count() int {
	n := 0
	for b := Mean; b <= Std; b <<= 1 {
		if s&b != 0 {
			n++
		}
	}
	return n
}

func (s Stat) String() string {
	out := ""
	for _, p := range []struct {
		s    Stat
		name string
	}{{Mean, "mean"}, {Max, "max"}, {Std, "std"}} {
		if s&p.s != 0 {
			if out != "" {
				out += "+"
			}
			out += p.name
		}
	}
	if out == "" {
		return "none"
	}
	return out
}

// Features says how a tensor (a dequantised latent, or trunk features)
// becomes the feature vector the linear models see: maps (the tensor's
// channels, or random filters of it) pooled over regions of the plane.
// The zero value is the default: see DefaultFeatures.
type Features struct {
	// Stats are pooled per map over each region. Zero means Mean|Max|Std.
	Stats Stat
	// Grid is the number of regions per side the plane is split into (1:
	// the whole plane; 2: four quadrants; ...). Zero means 1.
	Grid int
	// Global adds the whole-plane statistics to a Grid above 1 (a two-level
	// pyramid).
	Global bool
	// Filters, when above 0, pools Filters maps instead of the tensor's
	// channels: a fixed random projection of every Kernel x Kernel patch of
	// the tensor (all channels, zero padding) onto Filters directions with
	// entries ±1/√(channels·Kernel²) drawn from Seed, each followed by a
	// ReLU (a random convolution layer, as in Jarrett et al. 2009 and Saxe
	// et al. 2011).
	Filters int
	// Kernel is the filters' patch size. Zero means 3.
	Kernel int
	// Seed draws the filters; it is stored with the model.
	Seed uint64
}

// DefaultFeatures are the features measured best on es-b0.11's trunk
// features (docs/EDGE2TRAIN.md): mean, max and standard deviation of every
// channel over the whole plane.
var DefaultFeatures = Features{Stats: allStats, Grid: 1}

func (f Features) withDefaults() Features {
	if f == (Features{}) {
		return DefaultFeatures
	}
	if f.Stats == 0 {
		f.Stats = allStats
	}
	if f.Grid == 0 {
		f.Grid = 1
	}
	if f.Filters > 0 && f.Kernel == 0 {
		f.Kernel = 3
	}
	return f
}

func (f Features) String() string {
	f = f.withDefaults()
	s := "channels"
	if f.Filters > 0 {
		s = fmt.Sprintf("filters%dx%dk%d", f.Filters, f.Kernel, f.Kernel)
	}
	s += fmt.Sprintf("/%v/grid%d", f.Stats, f.Grid)
	if f.Global && f.Grid > 1 {
		s += "+global"
	}
	return s
}

// maxGrid bounds Grid.
const maxGrid = 16

// Bounds of the feature configuration.
const (
	maxKernel  = 7
	maxFilters = 1 << 12
)

// extractor computes feature vectors of tensors of one shape.
type extractor struct {
	f     Features
	shape codec.Shape
	dim   int
	maps  int // maps pooled: channels or filters
	// The filters (nil without): w holds, for every channel and tap, the
	// weight of every filter ([channel][ky][kx][filter]); border is the
	// sum of the taps that fall inside the latent, for every channel and
	// kind of position (how far from each edge, up to the kernel's half),
	// the same way.
	w                []float32
	rowKind, colKind []int // kind of each row and column
	kinds            [][2]int
	border           []float32 // [channel][row kind][column kind][filter]
	base, acc, resp  []float32 // scratch
	bg               []float32 // scratch: each channel's background
}

func newExtractor(f Features, s codec.Shape, maxDim int) (*extractor, error) {
	if s.C <= 0 || s.H <= 0 || s.W <= 0 || s.Len() > 1<<26 {
		return nil, fmt.Errorf("learn: tensor shape %v", s)
	}
	if f.Stats&^allStats != 0 || f.Stats == 0 {
		return nil, fmt.Errorf("learn: statistics %#x", uint8(f.Stats))
	}
	if f.Grid < 1 || f.Grid > maxGrid || f.Grid > s.H || f.Grid > s.W {
		return nil, fmt.Errorf("learn: grid %d for a %dx%d tensor", f.Grid, s.H, s.W)
	}
	if f.Filters < 0 || f.Filters > maxFilters || (f.Filters > 0) != (f.Kernel > 0) || f.Kernel > maxKernel || (f.Kernel > 0 && f.Kernel%2 == 0) {
		return nil, fmt.Errorf("learn: %d filters of kernel %d (at most %d, odd kernel up to %d)", f.Filters, f.Kernel, maxFilters, maxKernel)
	}
	regions := f.Grid * f.Grid
	if f.Global && f.Grid > 1 {
		regions++
	}
	maps := s.C
	if f.Filters > 0 {
		maps = f.Filters
	}
	dim := maps * regions * f.Stats.count()
	if dim > maxDim {
		return nil, fmt.Errorf("learn: %d features, over the bound of %d", dim, maxDim)
	}
	e := &extractor{f: f, shape: s, dim: dim, maps: maps}
	if f.Filters > 0 {
		e.makeFilters()
	}
	return e, nil
}

// makeFilters draws the filters from the seed and sums their taps for
// every kind of border position. What it allocates is bounded by
// maxFilters, maxKernel and the latent's size, which the caller (the
// bundle) gives.
func (e *extractor) makeFilters() {
	s, k, nf := e.shape, e.f.Kernel, e.f.Filters
	fan := s.C * k * k
	e.w = make([]float32, fan*nf)
	rng := rand.New(rand.NewPCG(e.f.Seed, 0x9e3779b97f4a7c15))
	a := float32(1 / math.Sqrt(float64(fan)))
	for i := range e.w {
		if rng.Uint64()&1 == 0 {
			e.w[i] = a
		} else {
			e.w[i] = -a
		}
	}
	// A position's kind is how many taps fit before and after it along
	// each axis, each capped at the kernel's half.
	half := k / 2
	index := map[[2]int]int{}
	kindOf := func(i, n int) int {
		key := [2]int{min(i, half), min(n-1-i, half)}
		id, ok := index[key]
		if !ok {
			id = len(e.kinds)
			index[key] = id
			e.kinds = append(e.kinds, key)
		}
		return id
	}
	for r := range s.H {
		e.rowKind = append(e.rowKind, kindOf(r, s.H))
	}
	for c := range s.W {
		e.colKind = append(e.colKind, kindOf(c, s.W))
	}
	nk := len(e.kinds)
	e.border = make([]float32, s.C*nk*nk*nf)
	for ch := range s.C {
		for rk, rkey := range e.kinds {
			for ck, ckey := range e.kinds {
				dst := e.border[((ch*nk+rk)*nk+ck)*nf:][:nf]
				for dy := -rkey[0]; dy <= rkey[1]; dy++ {
					for dx := -ckey[0]; dx <= ckey[1]; dx++ {
						axpy(1, e.tap(ch, dy, dx), dst)
					}
				}
			}
		}
	}
	e.base = make([]float32, nk*nk*nf)
	e.acc = make([]float32, s.H*s.W*nf)
	e.resp = make([]float32, s.H*s.W*nf)
	e.bg = make([]float32, s.C)
}

// tap returns every filter's weight for channel ch at offset (dy, dx)
// from the patch's centre.
func (e *extractor) tap(ch, dy, dx int) []float32 {
	k, nf := e.f.Kernel, e.f.Filters
	return e.w[((ch*k+dy+k/2)*k+dx+k/2)*nf:][:nf]
}

// extract writes the features of tensor y (channel-major, e.shape) into dst,
// which has e.dim elements.
func (e *extractor) extract(dst, y []float32) {
	s, f := e.shape, e.f
	maps := y
	if f.Filters > 0 {
		e.filter(y)
		maps = e.resp
	}
	k := 0
	pool := func(plane []float32, y0, y1, x0, x1 int) {
		var sum, sq float64
		mx := float32(math.Inf(-1))
		for r := y0; r < y1; r++ {
			for _, v := range plane[r*s.W+x0 : r*s.W+x1] {
				sum += float64(v)
				sq += float64(v) * float64(v)
				mx = max(mx, v)
			}
		}
		n := float64((y1 - y0) * (x1 - x0))
		mean := sum / n
		if f.Stats&Mean != 0 {
			dst[k] = float32(mean)
			k++
		}
		if f.Stats&Max != 0 {
			dst[k] = mx
			k++
		}
		if f.Stats&Std != 0 {
			dst[k] = float32(math.Sqrt(max(sq/n-mean*mean, 0)))
			k++
		}
	}
	plane := s.H * s.W
	for m := range e.maps {
		p := maps[m*plane : (m+1)*plane]
		if f.Global && f.Grid > 1 {
			pool(p, 0, s.H, 0, s.W)
		}
		for gy := range f.Grid {
			for gx := range f.Grid {
				pool(p, gy*s.H/f.Grid, (gy+1)*s.H/f.Grid, gx*s.W/f.Grid, (gx+1)*s.W/f.Grid)
			}
		}
	}
}

// filter writes the ReLU of every filter's response at every position of
// y into e.resp (map-major). The response is linear in y, so it is
// computed as that of a background, constant per channel (its majority
// value, or 0 when there is none), plus that of the few elements that
// differ from it: a quantised latent is mostly its channel medians, so
// this costs O(elements that differ x kernel² x filters), not
// O(size x kernel² x filters).
func (e *extractor) filter(y []float32) {
	s, nf, nk := e.shape, e.f.Filters, len(e.kinds)
	plane := s.H * s.W
	half := e.f.Kernel / 2
	clear(e.base)
	bg := e.bg
	for ch := range s.C {
		b := majority(y[ch*plane : (ch+1)*plane])
		bg[ch] = b
		if b != 0 {
			axpy(b, e.border[ch*nk*nk*nf:][:nk*nk*nf], e.base)
		}
	}
	for r := range s.H {
		for c := range s.W {
			copy(e.acc[(r*s.W+c)*nf:][:nf], e.base[(e.rowKind[r]*nk+e.colKind[c])*nf:][:nf])
		}
	}
	for ch := range s.C {
		for yy := range s.H {
			for xx, v := range y[ch*plane+yy*s.W:][:s.W] {
				d := v - bg[ch]
				if d == 0 {
					continue
				}
				// The element is tap (dy, dx) of the patch centred at
				// (yy-dy, xx-dx).
				for dy := max(-half, yy-s.H+1); dy <= min(half, yy); dy++ {
					for dx := max(-half, xx-s.W+1); dx <= min(half, xx); dx++ {
						axpy(d, e.tap(ch, dy, dx), e.acc[((yy-dy)*s.W+xx-dx)*nf:][:nf])
					}
				}
			}
		}
	}
	for p := range plane {
		for m, v := range e.acc[p*nf : (p+1)*nf] {
			e.resp[m*plane+p] = max(v, 0)
		}
	}
}

// majority returns the value held by more than half of v, or 0 if none
// is (Boyer and Moore's vote, then a count).
func majority(v []float32) float32 {
	var cand float32
	n := 0
	for _, x := range v {
		switch {
		case n == 0:
			cand, n = x, 1
		case x == cand:
			n++
		default:
			n--
		}
	}
	n = 0
	for _, x := range v {
		if x == cand {
			n++
		}
	}
	if 2*n > len(v) {
		return cand
	}
	return 0
}
