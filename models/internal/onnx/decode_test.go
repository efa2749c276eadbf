package onnx

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readGraph(t testing.TB, name string) []byte {
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeReferenceGraph(t *testing.T) {
	m, err := Decode(readGraph(t, "es_encoder_224.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	g := m.Graph
	if m.Opset[""] != 13 {
		t.Errorf("opset %v, want 13", m.Opset)
	}
	if len(g.Inputs) != 1 || g.Inputs[0].Name != "image" || len(g.Inputs[0].Shape) != 4 || g.Inputs[0].Shape[0] != -1 || g.Inputs[0].Shape[3] != 224 {
		t.Errorf("inputs %+v", g.Inputs)
	}
	if len(g.Outputs) != 1 || g.Outputs[0].Name != "latent" {
		t.Errorf("outputs %+v", g.Outputs)
	}
	ops := map[string]int{}
	for _, n := range g.Nodes {
		ops[n.OpType]++
	}
	if ops["Conv"] != 5 || ops["Div"] != 2 || ops["Sqrt"] != 2 {
		t.Errorf("op counts %v", ops)
	}
	var w *Tensor
	for _, in := range g.Initializers {
		if in.Name == "c1.weight" {
			w = in
		}
	}
	if w == nil || len(w.Dims) != 4 || w.Dims[0] != 96 || len(w.Float) != 96*3*5*5 {
		t.Fatalf("c1.weight: %+v", w)
	}
}

func TestDecodeErrors(t *testing.T) {
	good := readGraph(t, "ops.onnx")
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "no graph"},
		{"text", []byte("this is not an onnx file\n"), "decode model"},
		{"truncated", good[:len(good)/2], "decode model"},
		{"bad tag", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, "decode model"},
		{"graph as varint", []byte{7<<3 | 0, 1}, "wrong wire type"},
		// A tensor whose dims ask for more data than it carries.
		{"short tensor", []byte{7<<3 | 2, 8, 5<<3 | 2, 6, 1 << 3, 4, 2 << 3, 1, 9<<3 | 2, 0}, "need 16 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Decode: error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestDecodeEveryTruncation cuts a graph at every length: each prefix must
// decode cleanly or fail with an error.
func TestDecodeEveryTruncation(t *testing.T) {
	good := readGraph(t, "ops.onnx")
	for n := range len(good) {
		if m, err := Decode(good[:n]); err == nil && m.Graph == nil {
			t.Fatalf("prefix %d: no error and no graph", n)
		}
	}
}

func TestTensorRoundTrip(t *testing.T) {
	data := []float32{1, -2.5, 3e-8, 0}
	tt, err := DecodeTensor(EncodeTensor("x", []int{2, 2}, data))
	if err != nil {
		t.Fatal(err)
	}
	if tt.Name != "x" || len(tt.Dims) != 2 || tt.Dims[1] != 2 || tt.DataType != TypeFloat {
		t.Fatalf("got %+v", tt)
	}
	for i, v := range data {
		if tt.Float[i] != v {
			t.Fatalf("element %d: %v, want %v", i, tt.Float[i], v)
		}
	}
}

func TestHalfToFloat(t *testing.T) {
	for _, tc := range []struct {
		h    uint16
		want float32
	}{{0x3c00, 1}, {0xc000, -2}, {0x0000, 0}, {0x3555, 0.33325195}, {0x0001, 5.9604645e-08}, {0x7bff, 65504}} {
		if got := halfToFloat(tc.h); got != tc.want {
			t.Errorf("halfToFloat(%#x) = %v, want %v", tc.h, got, tc.want)
		}
	}
}

// FuzzDecode checks that no input makes the reader panic or hang.
func FuzzDecode(f *testing.F) {
	// Small seeds: the fuzzer's minimization of large inputs is slow.
	f.Add(readGraph(f, "ops.onnx")[:2048])
	f.Add(readGraph(f, "seg_head.onnx")[:1024])
	f.Add(EncodeTensor("t", []int{3}, []float32{1, 2, 3}))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err == nil && m.Graph == nil {
			t.Fatal("no error and no graph")
		}
		DecodeTensor(b)
	})
}
