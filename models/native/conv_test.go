package native

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/splitstream/splitstream/models/internal/onnx"
	"github.com/splitstream/splitstream/models/native/internal/gemm"
)

// convCase is one convolution geometry.
type convCase struct {
	c, h, w, m, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, group int
	bias, transpose                                           bool
	relu                                                      bool // a Relu node after, fused
	oph, opw                                                  int  // ConvTranspose output_padding
}

func (tc convCase) String() string {
	return fmt.Sprintf("c%d_%dx%d_m%d_k%dx%d_s%dx%d_d%dx%d_p%d%d%d%d_g%d_b%v_t%v_r%v", tc.c, tc.h, tc.w, tc.m, tc.kh, tc.kw,
		tc.sh, tc.sw, tc.dh, tc.dw, tc.pt, tc.pl, tc.pb, tc.pr, tc.group, tc.bias, tc.transpose, tc.relu)
}

func randSlice(rng *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = rng.Float32()*2 - 1
	}
	return s
}

// convModel builds a one-node graph.
func convModel(tc convCase, w, b []float32, wshape []int64) *onnx.Model {
	op := "Conv"
	if tc.transpose {
		op = "ConvTranspose"
	}
	ints := func(v ...int) *onnx.Attribute {
		a := &onnx.Attribute{Type: onnx.AttrInts}
		for _, x := range v {
			a.Ints = append(a.Ints, int64(x))
		}
		return a
	}
	n := &onnx.Node{OpType: op, Inputs: []string{"x", "w"}, Outputs: []string{"y"}, Attrs: map[string]*onnx.Attribute{
		"kernel_shape": ints(tc.kh, tc.kw), "strides": ints(tc.sh, tc.sw), "dilations": ints(tc.dh, tc.dw),
		"pads": ints(tc.pt, tc.pl, tc.pb, tc.pr), "group": {Type: onnx.AttrInt, I: int64(tc.group)}}}
	if tc.transpose {
		n.Attrs["output_padding"] = ints(tc.oph, tc.opw)
	}
	g := &onnx.Graph{Nodes: []*onnx.Node{n},
		Initializers: []*onnx.Tensor{{Name: "w", Dims: wshape, DataType: onnx.TypeFloat, Float: w}},
		Inputs:       []onnx.ValueInfo{{Name: "x", ElemType: onnx.TypeFloat, Shape: []int64{-1, int64(tc.c), int64(tc.h), int64(tc.w)}}},
		Outputs:      []onnx.ValueInfo{{Name: "y", ElemType: onnx.TypeFloat}}}
	if tc.relu {
		n.Outputs[0] = "pre"
		g.Nodes = append(g.Nodes, &onnx.Node{OpType: "Relu", Inputs: []string{"pre"}, Outputs: []string{"y"}})
	}
	if b != nil {
		n.Inputs = append(n.Inputs, "b")
		g.Initializers = append(g.Initializers, &onnx.Tensor{Name: "b", Dims: []int64{int64(len(b))}, DataType: onnx.TypeFloat, Float: b})
	}
	return &onnx.Model{Opset: map[string]int64{"": 13}, Graph: g}
}

// naiveConv is the textbook definition, in float64.
func naiveConv(tc convCase, n int, x, w, b []float32) ([]float64, int, int) {
	oh := (tc.h+tc.pt+tc.pb-(tc.kh-1)*tc.dh-1)/tc.sh + 1
	ow := (tc.w+tc.pl+tc.pr-(tc.kw-1)*tc.dw-1)/tc.sw + 1
	cg, mg := tc.c/tc.group, tc.m/tc.group
	y := make([]float64, n*tc.m*oh*ow)
	for bi := range n {
		for m := range tc.m {
			g := m / mg
			for oy := range oh {
				for ox := range ow {
					s := 0.0
					if b != nil {
						s = float64(b[m])
					}
					for ci := range cg {
						c := g*cg + ci
						for ky := range tc.kh {
							for kx := range tc.kw {
								iy, ix := oy*tc.sh-tc.pt+ky*tc.dh, ox*tc.sw-tc.pl+kx*tc.dw
								if iy < 0 || iy >= tc.h || ix < 0 || ix >= tc.w {
									continue
								}
								s += float64(x[((bi*tc.c+c)*tc.h+iy)*tc.w+ix]) * float64(w[((m*cg+ci)*tc.kh+ky)*tc.kw+kx])
							}
						}
					}
					y[((bi*tc.m+m)*oh+oy)*ow+ox] = s
				}
			}
		}
	}
	return y, oh, ow
}

// naiveConvTranspose scatters every input element through the kernel.
func naiveConvTranspose(tc convCase, n int, x, w, b []float32) ([]float64, int, int) {
	oh := tc.sh*(tc.h-1) + tc.oph + (tc.kh-1)*tc.dh + 1 - tc.pt - tc.pb
	ow := tc.sw*(tc.w-1) + tc.opw + (tc.kw-1)*tc.dw + 1 - tc.pl - tc.pr
	cg, mg := tc.c/tc.group, tc.m/tc.group
	y := make([]float64, n*tc.m*oh*ow)
	for bi := range n {
		for m := range tc.m {
			for i := range oh * ow {
				if b != nil {
					y[(bi*tc.m+m)*oh*ow+i] = float64(b[m])
				}
			}
		}
		for c := range tc.c {
			g := c / cg
			for iy := range tc.h {
				for ix := range tc.w {
					xv := float64(x[((bi*tc.c+c)*tc.h+iy)*tc.w+ix])
					for mi := range mg {
						m := g*mg + mi
						for ky := range tc.kh {
							for kx := range tc.kw {
								oy, ox := iy*tc.sh-tc.pt+ky*tc.dh, ix*tc.sw-tc.pl+kx*tc.dw
								if oy < 0 || oy >= oh || ox < 0 || ox >= ow {
									continue
								}
								y[((bi*tc.m+m)*oh+oy)*ow+ox] += xv * float64(w[((c*mg+mi)*tc.kh+ky)*tc.kw+kx])
							}
						}
					}
				}
			}
		}
	}
	return y, oh, ow
}

func TestConvAgainstNaive(t *testing.T) {
	cases := []convCase{
		{c: 3, h: 20, w: 23, m: 8, kh: 5, kw: 5, sh: 2, sw: 2, dh: 1, dw: 1, pt: 2, pl: 2, pb: 2, pr: 2, group: 1},
		{c: 4, h: 9, w: 9, m: 6, kh: 1, kw: 1, sh: 1, sw: 1, dh: 1, dw: 1, group: 1, bias: true},
		{c: 4, h: 9, w: 11, m: 6, kh: 1, kw: 1, sh: 2, sw: 3, dh: 1, dw: 1, group: 2, bias: true},
		{c: 6, h: 13, w: 10, m: 4, kh: 3, kw: 2, sh: 1, sw: 1, dh: 2, dw: 3, pt: 2, pl: 1, pb: 0, pr: 3, group: 1},
		{c: 6, h: 14, w: 14, m: 6, kh: 3, kw: 3, sh: 2, sw: 2, dh: 1, dw: 1, pt: 1, pl: 1, pb: 1, pr: 1, group: 6, bias: true},
		{c: 5, h: 11, w: 7, m: 5, kh: 3, kw: 3, sh: 3, sw: 1, dh: 2, dw: 1, pt: 3, pl: 0, pb: 1, pr: 2, group: 5},
		{c: 8, h: 10, w: 10, m: 4, kh: 4, kw: 4, sh: 4, sw: 4, dh: 1, dw: 1, group: 2},
		{c: 2, h: 3, w: 2, m: 3, kh: 3, kw: 3, sh: 2, sw: 2, dh: 1, dw: 1, pt: 1, pl: 2, pb: 1, pr: 2, group: 1, bias: true},
		// More of the shifted-GEMM path (every ungrouped kernel over 1x1).
		{c: 32, h: 15, w: 13, m: 8, kh: 5, kw: 5, sh: 2, sw: 2, dh: 1, dw: 1, pt: 2, pl: 2, pb: 2, pr: 2, group: 1},
		{c: 40, h: 9, w: 12, m: 7, kh: 3, kw: 3, sh: 1, sw: 1, dh: 2, dw: 2, pt: 1, pl: 1, pb: 1, pr: 1, group: 1, bias: true},
		{c: 33, h: 11, w: 10, m: 5, kh: 3, kw: 2, sh: 3, sw: 1, dh: 1, dw: 3, pt: 0, pl: 2, pb: 2, pr: 0, group: 1, bias: true},
		{c: 32, h: 6, w: 6, m: 4, kh: 2, kw: 2, sh: 1, sw: 1, dh: 1, dw: 1, group: 1},
		{c: 32, h: 8, w: 17, m: 3, kh: 3, kw: 4, sh: 2, sw: 3, dh: 1, dw: 2, pt: 1, pl: 3, pb: 0, pr: 1, group: 1, bias: true},
		// The shipped graphs' sizes: several row bands and column tiles
		// with 3 threads, output rows split between tiles, fused ReLU.
		{c: 32, h: 24, w: 24, m: 48, kh: 3, kw: 3, sh: 1, sw: 1, dh: 1, dw: 1, pt: 1, pl: 1, pb: 1, pr: 1, group: 1, bias: true, relu: true},
		{c: 64, h: 6, w: 6, m: 128, kh: 3, kw: 3, sh: 1, sw: 1, dh: 1, dw: 1, pt: 1, pl: 1, pb: 1, pr: 1, group: 1, bias: true, relu: true},
		{c: 48, h: 24, w: 24, m: 24, kh: 2, kw: 2, sh: 1, sw: 1, dh: 1, dw: 1, group: 1, bias: true},
		{c: 24, h: 23, w: 23, m: 128, kh: 2, kw: 2, sh: 1, sw: 1, dh: 1, dw: 1, pt: 1, pl: 1, pb: 0, pr: 0, group: 1, bias: true, relu: true},
		{c: 32, h: 24, w: 24, m: 64, kh: 1, kw: 1, sh: 2, sw: 2, dh: 1, dw: 1, group: 1, bias: true},
		{c: 5, h: 7, w: 6, m: 4, kh: 1, kw: 1, sh: 1, sw: 2, dh: 1, dw: 1, pt: 1, pl: 0, pb: 2, pr: 1, group: 1, relu: true},
		{c: 31, h: 8, w: 8, m: 256, kh: 3, kw: 3, sh: 1, sw: 1, dh: 1, dw: 1, pt: 1, pl: 1, pb: 1, pr: 1, group: 1, bias: true, relu: true},
		// Output channels as columns (chanCols): strided into 6x6, and
		// channels that are not whole tiles with positions that are not.
		{c: 64, h: 12, w: 12, m: 128, kh: 3, kw: 3, sh: 2, sw: 2, dh: 1, dw: 1, pt: 1, pl: 1, pb: 1, pr: 1, group: 1, bias: true},
		{c: 20, h: 5, w: 5, m: 72, kh: 3, kw: 3, sh: 1, sw: 1, dh: 1, dw: 1, pt: 1, pl: 1, pb: 1, pr: 1, group: 1},
		{c: 48, h: 24, w: 24, m: 10, kh: 1, kw: 1, sh: 1, sw: 1, dh: 1, dw: 1, group: 1, bias: true, relu: true},
		{c: 8, h: 6, w: 5, m: 6, kh: 4, kw: 4, sh: 2, sw: 2, dh: 1, dw: 1, pt: 1, pl: 1, pb: 1, pr: 1, group: 1, bias: true, transpose: true},
		{c: 4, h: 5, w: 7, m: 6, kh: 3, kw: 2, sh: 3, sw: 2, dh: 2, dw: 1, pt: 0, pl: 1, pb: 2, pr: 0, group: 2, transpose: true, oph: 1, opw: 1},
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for _, tc := range cases {
		for _, threads := range []int{1, 3} {
			t.Run(fmt.Sprintf("%v/threads=%d", tc, threads), func(t *testing.T) {
				wshape := []int64{int64(tc.m), int64(tc.c / tc.group), int64(tc.kh), int64(tc.kw)}
				if tc.transpose {
					wshape = []int64{int64(tc.c), int64(tc.m / tc.group), int64(tc.kh), int64(tc.kw)}
				}
				w := randSlice(rng, int(wshape[0]*wshape[1]*wshape[2]*wshape[3]))
				var b []float32
				if tc.bias {
					b = randSlice(rng, tc.m)
				}
				mod, err := Load(convModel(tc, w, b, wshape), threads)
				if err != nil {
					t.Fatal(err)
				}
				const n = 2
				x := randSlice(rng, n*tc.c*tc.h*tc.w)
				out, err := mod.Run(context.Background(), []Tensor{{Shape: []int{n, tc.c, tc.h, tc.w}, Data: x}})
				if err != nil {
					t.Fatal(err)
				}
				want, oh, ow := naiveConv(tc, n, x, w, b)
				if tc.transpose {
					want, oh, ow = naiveConvTranspose(tc, n, x, w, b)
				}
				if got := out[0].Shape; len(got) != 4 || got[0] != n || got[1] != tc.m || got[2] != oh || got[3] != ow {
					t.Fatalf("shape %v, want [%d %d %d %d]", got, n, tc.m, oh, ow)
				}
				for i, v := range out[0].Data {
					if tc.relu {
						want[i] = max(want[i], 0)
					}
					if math.Abs(float64(v)-want[i]) > 1e-4*(1+math.Abs(want[i])) {
						t.Fatalf("element %d: %v, want %v", i, v, want[i])
					}
				}
			})
		}
	}
}

// TestConvFoldedShifted plans a shifted-GEMM convolution whose input is a
// constant, so that it runs once at plan time, and checks the result.
func TestConvFoldedShifted(t *testing.T) {
	tc := convCase{c: 32, h: 6, w: 6, m: 8, kh: 3, kw: 3, sh: 1, sw: 1, dh: 1, dw: 1, pt: 1, pl: 1, pb: 1, pr: 1, group: 1}
	rng := rand.New(rand.NewPCG(7, 8))
	w := randSlice(rng, tc.m*tc.c*9)
	x := randSlice(rng, tc.c*36)
	mod := convModel(tc, w, nil, []int64{int64(tc.m), int64(tc.c), 3, 3})
	g := mod.Graph
	g.Initializers = append(g.Initializers, &onnx.Tensor{Name: "x", Dims: []int64{1, int64(tc.c), 6, 6}, DataType: onnx.TypeFloat, Float: x})
	g.Nodes[0].Outputs[0] = "conv"
	g.Nodes = append(g.Nodes, &onnx.Node{OpType: "Add", Inputs: []string{"conv", "in"}, Outputs: []string{"y"}})
	g.Inputs = []onnx.ValueInfo{{Name: "in", ElemType: onnx.TypeFloat, Shape: []int64{1, int64(tc.m), 6, 6}}}
	m, err := Load(mod, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	out, err := m.Run(context.Background(), []Tensor{{Shape: []int{1, tc.m, 6, 6}, Data: make([]float32, tc.m*36)}})
	if err != nil {
		t.Fatal(err)
	}
	want, _, _ := naiveConv(tc, 1, x, w, nil)
	for i, v := range out[0].Data {
		if math.Abs(float64(v)-want[i]) > 1e-4*(1+math.Abs(want[i])) {
			t.Fatalf("element %d: %v, want %v", i, v, want[i])
		}
	}
}

// TestChanColsRule checks which layout the cost rule picks for the
// shipped graphs' 3x3 convolutions where the kernel reads gathered rows
// in place: channels as columns on the small maps, the wide layout on
// the 24 x 24 ones.
func TestChanColsRule(t *testing.T) {
	if !gemm.GatherInPlace() {
		t.Skip("this CPU's kernel does not read gathered rows in place: the wide layout always")
	}
	for _, tt := range []struct {
		c, h, m, stride int
		want            bool
	}{
		{128, 6, 128, 1, true},
		{64, 12, 128, 2, true},
		{64, 12, 64, 1, true},
		{48, 24, 48, 1, false},
		{128, 24, 32, 1, false},
		{32, 24, 128, 1, false},
	} {
		g := convGeom{n: 1, c: tt.c, h: tt.h, w: tt.h, m: tt.m, kh: 3, kw: 3, grp: 1, sh: tt.stride, sw: tt.stride,
			dh: 1, dw: 1, pt: 1, pl: 1, pb: 1, pr: 1}
		g.oh, g.ow = (tt.h-1)/tt.stride+1, (tt.h-1)/tt.stride+1
		if got := newShifted(g, make([]float32, tt.m*tt.c*9), 1).wt != nil; got != tt.want {
			t.Errorf("%d->%d on %dx%d stride %d: channels as columns %v, want %v", tt.c, tt.m, tt.h, tt.h, tt.stride, got, tt.want)
		}
	}
}

// TestShiftedCols runs the channels-as-columns layout on geometries the
// cost rule may not pick (strides, dilations, uneven pads, two images),
// on whatever kernel this build has (the others gather A in Go), against
// the naive convolution.
func TestShiftedCols(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, tc := range []convCase{
		{c: 16, h: 12, w: 12, m: 40, kh: 3, kw: 3, sh: 2, sw: 2, dh: 1, dw: 1, pt: 1, pl: 1, pb: 1, pr: 1, group: 1, bias: true},
		{c: 9, h: 11, w: 13, m: 33, kh: 3, kw: 2, sh: 3, sw: 2, dh: 2, dw: 1, pt: 2, pl: 0, pb: 1, pr: 2, group: 1, relu: true},
		{c: 20, h: 6, w: 6, m: 64, kh: 3, kw: 3, sh: 1, sw: 1, dh: 1, dw: 1, pt: 1, pl: 1, pb: 1, pr: 1, group: 1, bias: true, relu: true},
		{c: 7, h: 9, w: 8, m: 8, kh: 5, kw: 5, sh: 2, sw: 2, dh: 1, dw: 1, pt: 2, pl: 2, pb: 2, pr: 2, group: 1},
	} {
		for _, threads := range []int{1, 3} {
			t.Run(fmt.Sprintf("%v/threads=%d", tc, threads), func(t *testing.T) {
				const n = 2
				g := convGeom{n: n, c: tc.c, h: tc.h, w: tc.w, m: tc.m, kh: tc.kh, kw: tc.kw, grp: 1, sh: tc.sh, sw: tc.sw,
					dh: tc.dh, dw: tc.dw, pt: tc.pt, pl: tc.pl, pb: tc.pb, pr: tc.pr}
				g.oh = (g.h+g.pt+g.pb-(g.kh-1)*g.dh-1)/g.sh + 1
				g.ow = (g.w+g.pl+g.pr-(g.kw-1)*g.dw-1)/g.sw + 1
				w := randSlice(rng, g.m*g.c*g.kh*g.kw)
				var b []float32
				if tc.bias {
					b = randSlice(rng, g.m)
				}
				x := randSlice(rng, n*g.c*g.h*g.w)
				s := newShiftedCols(g, w, threads)
				f := &fusable{}
				if tc.relu {
					f.act = &activation{op: uRelu}
				}
				y := make([]float32, n*g.m*g.oh*g.ow)
				tm := newTeam(threads)
				defer tm.close()
				s.kernel(operand{data: x}, b, 0, f, threads)([][]float32{y}, make([]float32, s.size), tm)
				want, oh, ow := naiveConv(tc, n, x, w, b)
				if oh != g.oh || ow != g.ow {
					t.Fatalf("output %dx%d, want %dx%d", g.oh, g.ow, oh, ow)
				}
				for i, v := range y {
					if tc.relu {
						want[i] = max(want[i], 0)
					}
					if math.Abs(float64(v)-want[i]) > 1e-4*(1+math.Abs(want[i])) {
						t.Fatalf("element %d: %v, want %v", i, v, want[i])
					}
				}
			})
		}
	}
}
