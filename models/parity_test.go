package models

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// refGraphs are the reference graphs written by testdata/gen/refgraphs.py.
var refGraphs = []string{"es_encoder_224", "es_encoder_64", "cls_head", "det_head", "seg_head", "ops"}

// ortLib returns the ONNX Runtime library for tests, or skips.
func ortLib(t testing.TB) string {
	lib := os.Getenv(ORTLibraryEnv)
	if lib == "" {
		lib, _ = filepath.Abs("../third_party/ort/libonnxruntime.so")
	}
	if _, err := os.Stat(lib); err != nil {
		t.Skipf("ONNX Runtime library not found (%s=%q): run `make ort` to compare against it", ORTLibraryEnv, os.Getenv(ORTLibraryEnv))
	}
	return lib
}

// randomInputs fills every input of e with uniform [-1, 1) values, with
// dynamic dimensions set to batch.
func randomInputs(e Engine, batch int, rng *rand.Rand) map[string]Tensor {
	in := map[string]Tensor{}
	for _, info := range e.Inputs() {
		shape := make([]int, len(info.Shape))
		n := 1
		for k, d := range info.Shape {
			if d < 0 {
				d = batch
			}
			shape[k] = d
			n *= d
		}
		data := make([]float32, n)
		for i := range data {
			data[i] = rng.Float32()*2 - 1
		}
		in[info.Name] = Tensor{Shape: shape, Data: data}
	}
	return in
}

// relErr returns ||a-b|| / ||b||.
func relErr(a, b []float32) float64 {
	var num, den float64
	for i := range b {
		d := float64(a[i]) - float64(b[i])
		num += d * d
		den += float64(b[i]) * float64(b[i])
	}
	if den == 0 {
		return math.Sqrt(num)
	}
	return math.Sqrt(num / den)
}

func compareOutputs(t *testing.T, got, want map[string]Tensor) {
	t.Helper()
	for name, w := range want {
		g, ok := got[name]
		if !ok {
			t.Errorf("output %q missing", name)
			continue
		}
		if !equalShape(g.Shape, w.Shape) {
			t.Errorf("output %q: shape %v, want %v", name, g.Shape, w.Shape)
			continue
		}
		if e := relErr(g.Data, w.Data); !(e <= 1e-5) {
			t.Errorf("output %q %v: relative error %.3g > 1e-5", name, w.Shape, e)
		} else {
			t.Logf("output %q %v: relative error %.3g", name, w.Shape, e)
		}
	}
}

func equalShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if a[k] != b[k] {
			return false
		}
	}
	return true
}

// TestParityORT runs every reference graph on both engines, on fresh random
// inputs at batch 1 and 4, and compares the outputs.
func TestParityORT(t *testing.T) {
	lib := ortLib(t)
	rng := rand.New(rand.NewPCG(rand.Uint64(), 1))
	for _, name := range refGraphs {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("testdata", name+".onnx")
			nat, err := OpenFile(Native, path, Options{Threads: 2})
			if err != nil {
				t.Fatal(err)
			}
			defer nat.Close()
			ref, err := OpenFile(ORT, path, Options{Threads: 2, ORTLibrary: lib})
			if errors.Is(err, ErrNoCgo) {
				t.Skip(err)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer ref.Close()
			for _, batch := range []int{1, 4} {
				in := randomInputs(nat, batch, rng)
				want, err := ref.Run(context.Background(), in)
				if err != nil {
					t.Fatalf("batch %d: ort: %v", batch, err)
				}
				got, err := nat.Run(context.Background(), in)
				if err != nil {
					t.Fatalf("batch %d: native: %v", batch, err)
				}
				compareOutputs(t, got, want)
			}
		})
	}
}

// TestParityZoo runs every graph of every shipped bundle (zoo/*/*.onnx) on
// both engines at 1 and 2 threads and compares the outputs: the graphs the
// engines are timed on in BenchmarkZoo.
func TestParityZoo(t *testing.T) {
	lib := ortLib(t)
	graphs, err := filepath.Glob(filepath.Join("zoo", "*", "*.onnx"))
	if err != nil || len(graphs) == 0 {
		t.Skipf("no shipped graphs under zoo/: %v", err)
	}
	rng := rand.New(rand.NewPCG(rand.Uint64(), 3))
	for _, path := range graphs {
		t.Run(path, func(t *testing.T) {
			ref, err := OpenFile(ORT, path, Options{Threads: 1, ORTLibrary: lib})
			if errors.Is(err, ErrNoCgo) {
				t.Skip(err)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer ref.Close()
			in := randomInputs(ref, 1, rng)
			want, err := ref.Run(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			for _, threads := range []int{1, 2} {
				nat, err := OpenFile(Native, path, Options{Threads: threads})
				if err != nil {
					t.Fatal(err)
				}
				got, err := nat.Run(context.Background(), in)
				nat.Close()
				if err != nil {
					t.Fatalf("threads %d: %v", threads, err)
				}
				compareOutputs(t, got, want)
			}
		})
	}
}
