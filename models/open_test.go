package models

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func readTestdata(t testing.TB, name string) []byte {
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestOpenErrors(t *testing.T) {
	ops := readTestdata(t, "ops.onnx")
	tests := []struct {
		name, kind string
		model      []byte
		want       string
	}{
		{"empty", Native, nil, "no graph"},
		{"garbage", Native, []byte("\x00\x01garbage\xff\xfe"), "decode model"},
		{"truncated", Native, ops[:len(ops)*2/3], "decode model"},
		{"unknown engine", "tpu", ops, `unknown engine "tpu"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Open(tt.kind, tt.model, Options{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Open: error %v, want one containing %q", err, tt.want)
			}
		})
	}
	if _, err := OpenFile(Native, "testdata/no-such-file.onnx", Options{}); err == nil || !strings.Contains(err.Error(), "no-such-file") {
		t.Fatalf("OpenFile of a missing file: %v", err)
	}
}

// TestOpenEveryTruncation opens every prefix of a graph (in steps): each
// must load or fail with an error, never panic.
func TestOpenEveryTruncation(t *testing.T) {
	ops := readTestdata(t, "ops.onnx")
	for n := 0; n < len(ops); n += 7 {
		if e, err := Open(Native, ops[:n], Options{Threads: 1}); err == nil {
			e.Close()
		}
	}
}

func TestRunChecksInputs(t *testing.T) {
	e, err := OpenFile(Native, "testdata/es_encoder_64.onnx", Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if got := e.Inputs(); len(got) != 1 || got[0].Name != "image" || !equalShape(got[0].Shape, []int{-1, 3, 64, 64}) {
		t.Fatalf("Inputs() = %v", got)
	}
	if got := e.Outputs(); len(got) != 1 || got[0].Name != "latent" || !equalShape(got[0].Shape, []int{-1, 24, 15, 15}) {
		t.Fatalf("Outputs() = %v", got)
	}
	img := func(shape ...int) Tensor {
		n := 1
		for _, d := range shape {
			n *= d
		}
		return Tensor{Shape: shape, Data: make([]float32, n)}
	}
	tests := []struct {
		name string
		in   map[string]Tensor
		want string
	}{
		{"missing", map[string]Tensor{}, `input "image" is missing`},
		{"unknown", map[string]Tensor{"image": img(1, 3, 64, 64), "extra": img(1)}, `unknown input "extra"`},
		{"rank", map[string]Tensor{"image": img(3, 64, 64)}, "has rank 3, the graph declares [? 3 64 64]"},
		{"dimension", map[string]Tensor{"image": img(1, 3, 64, 65)}, "dimension 3 is 65"},
		{"data length", map[string]Tensor{"image": {Shape: []int{1, 3, 64, 64}, Data: make([]float32, 10)}}, "needs 12288 values, data has 10"},
		{"negative", map[string]Tensor{"image": {Shape: []int{-1, 3, 64, 64}}}, "negative dimension"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.Run(context.Background(), tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Run: error %v, want one containing %q", err, tt.want)
			}
		})
	}
	out, err := e.Run(context.Background(), map[string]Tensor{"image": img(3, 3, 64, 64)})
	if err != nil {
		t.Fatal(err)
	}
	if got := out["latent"].Shape; !equalShape(got, []int{3, 24, 15, 15}) {
		t.Fatalf("latent shape %v at batch 3", got)
	}
}

func TestRunCancelled(t *testing.T) {
	e, err := OpenFile(Native, "testdata/cls_head.onnx", Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.Run(ctx, randomInputs(e, 1, rand.New(rand.NewPCG(1, 1)))); err != context.Canceled {
		t.Fatalf("Run with a cancelled context: %v", err)
	}
}

// TestConcurrentRuns runs one engine from several goroutines and checks
// every result against a sequential run, for both engines.
func TestConcurrentRuns(t *testing.T) {
	for _, kind := range []string{Native, ORT} {
		t.Run(kind, func(t *testing.T) {
			opts := Options{Threads: 2}
			if kind == ORT {
				opts.ORTLibrary = ortLib(t)
			}
			e, err := OpenFile(kind, "testdata/det_head.onnx", opts)
			if errors.Is(err, ErrNoCgo) {
				t.Skip(err)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			rng := rand.New(rand.NewPCG(3, 4))
			const n = 6
			ins := make([]map[string]Tensor, n)
			wants := make([]map[string]Tensor, n)
			for k := range ins {
				ins[k] = randomInputs(e, 1+k%2, rng)
				if wants[k], err = e.Run(context.Background(), ins[k]); err != nil {
					t.Fatal(err)
				}
			}
			errs := make(chan error, n)
			gots := make([]map[string]Tensor, n)
			for k := range n {
				go func() {
					var err error
					gots[k], err = e.Run(context.Background(), ins[k])
					errs <- err
				}()
			}
			for range n {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
			for k := range n {
				for name, w := range wants[k] {
					g := gots[k][name]
					for i := range w.Data {
						if g.Data[i] != w.Data[i] {
							t.Fatalf("run %d output %q differs at %d: %v vs %v", k, name, i, g.Data[i], w.Data[i])
						}
					}
				}
			}
		})
	}
}

// FuzzOpenNative loads mutated graphs into the native engine and runs the
// ones with small inputs: errors are fine, panics and hangs are not.
func FuzzOpenNative(f *testing.F) {
	f.Add(readTestdata(f, "ops.onnx"))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Open(Native, b, Options{Threads: 1})
		if err != nil {
			return
		}
		defer e.Close()
		total := 0
		for _, in := range e.Inputs() {
			n := 1
			for _, d := range in.Shape {
				n *= max(d, 1)
			}
			total += n
		}
		if total > 1<<16 {
			return
		}
		e.Run(context.Background(), randomInputs(e, 1, rand.New(rand.NewPCG(1, 1))))
	})
}

func TestORTMissingLibrary(t *testing.T) {
	_, err := Open(ORT, readTestdata(t, "ops.onnx"), Options{ORTLibrary: "/nonexistent/libonnxruntime.so"})
	if err == nil {
		t.Fatal("Open with a missing ONNX Runtime library succeeded")
	}
	if !errors.Is(err, ErrNoCgo) && !strings.Contains(err.Error(), "libonnxruntime") {
		t.Fatalf("error does not name the library: %v", err)
	}
	t.Log(err)
}

// Auto falls back to the native engine where ONNX Runtime cannot load, and
// says which it chose.
func TestAutoChooses(t *testing.T) {
	model := readTestdata(t, "ops.onnx")
	e, err := Open(Auto, model, Options{ORTLibrary: "/nonexistent/libonnxruntime.so"})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if k := KindOf(e); k != Native {
		t.Errorf("auto without a library chose %q", k)
	}
	n, err := Open(Native, model, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if k := KindOf(n); k != Native {
		t.Errorf("native engine reports %q", k)
	}
	// With the library present (make ort), auto takes ONNX Runtime.
	if _, err := Open(ORT, model, Options{}); err != nil {
		t.Logf("ONNX Runtime not available here (%v): the ort branch of auto is untested", err)
		return
	}
	o, err := Open(Auto, model, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if k := KindOf(o); k != ORT {
		t.Errorf("auto with ONNX Runtime available chose %q", k)
	}
}
