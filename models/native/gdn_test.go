package native

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/splitstream/splitstream/models/internal/onnx"
)

// gdnGraph builds the GDN chain the way the bundle exporter writes it:
// Mul(x, x) -> Conv(gamma, bias beta) -> Sqrt -> Div(x, .) (Mul for the
// inverse), or, with addBeta, the beta as a separate Add of a [1 C 1 1]
// constant and the square as Pow(x, 2).
func gdnGraph(c int, gamma, beta []float32, inverse, addBeta bool) *onnx.Model {
	f := func(name string, dims []int64, v []float32) *onnx.Tensor {
		return &onnx.Tensor{Name: name, Dims: dims, DataType: onnx.TypeFloat, Float: v}
	}
	inits := []*onnx.Tensor{f("gamma", []int64{int64(c), int64(c), 1, 1}, gamma)}
	sq := &onnx.Node{OpType: "Mul", Inputs: []string{"x", "x"}, Outputs: []string{"s"}}
	conv := &onnx.Node{OpType: "Conv", Inputs: []string{"s", "gamma", "beta"}, Outputs: []string{"a"},
		Attrs: map[string]*onnx.Attribute{"kernel_shape": {Type: onnx.AttrInts, Ints: []int64{1, 1}}}}
	nodes := []*onnx.Node{sq, conv}
	if addBeta {
		sq.OpType, sq.Inputs = "Pow", []string{"x", "two"}
		inits = append(inits, f("two", nil, []float32{2}), f("beta", []int64{1, int64(c), 1, 1}, beta))
		conv.Inputs, conv.Outputs = conv.Inputs[:2], []string{"cv"}
		nodes = append(nodes, &onnx.Node{OpType: "Add", Inputs: []string{"beta", "cv"}, Outputs: []string{"a"}})
	} else {
		inits = append(inits, f("beta", []int64{int64(c)}, beta))
	}
	op := "Div"
	if inverse {
		op = "Mul"
	}
	nodes = append(nodes, &onnx.Node{OpType: "Sqrt", Inputs: []string{"a"}, Outputs: []string{"r"}},
		&onnx.Node{OpType: op, Inputs: []string{"x", "r"}, Outputs: []string{"y"}})
	for _, n := range nodes {
		if n.Attrs == nil {
			n.Attrs = map[string]*onnx.Attribute{}
		}
	}
	return &onnx.Model{Opset: map[string]int64{"": 13}, Graph: &onnx.Graph{Nodes: nodes, Initializers: inits,
		Inputs:  []onnx.ValueInfo{{Name: "x", ElemType: onnx.TypeFloat, Shape: []int64{-1, int64(c), 7, 9}}},
		Outputs: []onnx.ValueInfo{{Name: "y", ElemType: onnx.TypeFloat}}}}
}

func TestGDNFusion(t *testing.T) {
	const c, h, w, n = 5, 7, 9, 2
	rng := rand.New(rand.NewPCG(7, 8))
	gamma := make([]float32, c*c)
	for i := range gamma {
		gamma[i] = 0.1 * rng.Float32()
	}
	beta := make([]float32, c)
	for i := range beta {
		beta[i] = 0.5 + rng.Float32()
	}
	x := randSlice(rng, n*c*h*w)
	for _, tc := range []struct {
		name             string
		inverse, addBeta bool
	}{{"exporter", false, false}, {"exporter inverse", true, false}, {"pow and add", false, true}} {
		t.Run(tc.name, func(t *testing.T) {
			mod, err := Load(gdnGraph(c, gamma, beta, tc.inverse, tc.addBeta), 2)
			if err != nil {
				t.Fatal(err)
			}
			defer mod.Close()
			for _, p := range mod.plans {
				if len(p.steps) != 1 || p.steps[0].op != "GDN" {
					t.Fatalf("plan %v, want one GDN step", p.steps)
				}
			}
			out, err := mod.Run(context.Background(), []Tensor{{Shape: []int{n, c, h, w}, Data: x}})
			if err != nil {
				t.Fatal(err)
			}
			for b := range n {
				for p := range h * w {
					for o := range c {
						norm := float64(beta[o])
						for i := range c {
							v := float64(x[(b*c+i)*h*w+p])
							norm += float64(gamma[o*c+i]) * v * v
						}
						xv := float64(x[(b*c+o)*h*w+p])
						want := xv / math.Sqrt(norm)
						if tc.inverse {
							want = xv * math.Sqrt(norm)
						}
						if got := float64(out[0].Data[(b*c+o)*h*w+p]); math.Abs(got-want) > 1e-5*(1+math.Abs(want)) {
							t.Fatalf("batch %d channel %d position %d: %v, want %v", b, o, p, got, want)
						}
					}
				}
			}
		})
	}
}
