package models

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/splitstream/splitstream/models/internal/onnx"
)

var update = flag.Bool("update", false, "rewrite testdata/parity from ONNX Runtime's outputs")

// savedGraphs are the graphs whose ONNX Runtime outputs are committed, so
// that the native engine is checked on machines without ONNX Runtime (the
// arm64 tests under qemu). Small ones only: qemu is slow.
var savedGraphs = []string{"es_encoder_64", "cls_head", "det_head", "seg_head", "ops"}

const savedBatch = 2

// TestSavedOutputs compares the native engine with ONNX Runtime outputs
// saved on amd64 (ONNX's test-data layout: input_K.pb / output_K.pb
// TensorProtos). Run with -update (and the ORT library) to rewrite them.
func TestSavedOutputs(t *testing.T) {
	if *update {
		writeSaved(t)
	}
	for _, name := range savedGraphs {
		t.Run(name, func(t *testing.T) {
			e, err := OpenFile(Native, filepath.Join("testdata", name+".onnx"), Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			dir := filepath.Join("testdata", "parity", name)
			in, err := readTensors(dir, "input", e.Inputs())
			if err != nil {
				t.Fatal(err)
			}
			want, err := readTensors(dir, "output", e.Outputs())
			if err != nil {
				t.Fatal(err)
			}
			got, err := e.Run(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			compareOutputs(t, got, want)
		})
	}
}

func readTensors(dir, kind string, infos []TensorInfo) (map[string]Tensor, error) {
	out := map[string]Tensor{}
	for k, info := range infos {
		b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("%s_%d.pb", kind, k)))
		if err != nil {
			return nil, err
		}
		t, err := onnx.DecodeTensor(b)
		if err != nil {
			return nil, err
		}
		if t.Name != info.Name || !t.IsFloat() {
			return nil, fmt.Errorf("%s %d: tensor %q, want float tensor %q", kind, k, t.Name, info.Name)
		}
		shape := make([]int, len(t.Dims))
		for d, v := range t.Dims {
			shape[d] = int(v)
		}
		out[info.Name] = Tensor{Shape: shape, Data: t.Float}
	}
	return out, nil
}

func writeSaved(t *testing.T) {
	lib := ortLib(t)
	for k, name := range savedGraphs {
		e, err := OpenFile(ORT, filepath.Join("testdata", name+".onnx"), Options{Threads: 1, ORTLibrary: lib})
		if errors.Is(err, ErrNoCgo) {
			t.Skip("-update needs the ORT engine:", err)
		}
		if err != nil {
			t.Fatal(err)
		}
		in := randomInputs(e, savedBatch, rand.New(rand.NewPCG(uint64(k), 42)))
		out, err := e.Run(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join("testdata", "parity", name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for kind, set := range map[string]struct {
			infos []TensorInfo
			ts    map[string]Tensor
		}{"input": {e.Inputs(), in}, "output": {e.Outputs(), out}} {
			for i, info := range set.infos {
				tt := set.ts[info.Name]
				b := onnx.EncodeTensor(info.Name, tt.Shape, tt.Data)
				if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s_%d.pb", kind, i)), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		e.Close()
	}
}
