package models

import (
	"context"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"testing"
)

// TestParityORTDynamicConv runs the dynamic-convolution encoders of
// testdata/gen/dycnn.py on both engines at 1 and 2 threads: the aggregated
// form, whose Conv weight is computed in the graph (native: read at run
// time), at batch 1, where its Reshape to the kernel's shape holds; the mixed
// form (static weights) at batch 1 and 3. The two forms compute the same
// function, so the native outputs of both are compared too.
func TestParityORTDynamicConv(t *testing.T) {
	lib := ortLib(t)
	rng := rand.New(rand.NewPCG(rand.Uint64(), 23))
	outs := map[string]Tensor{}
	var in map[string]Tensor
	for _, tc := range []struct {
		form    string
		batches []int
	}{{"aggregate", []int{1}}, {"mixed", []int{1, 3}}} {
		path := filepath.Join("testdata", "dycnn_"+tc.form+".onnx")
		ref, err := OpenFile(ORT, path, Options{Threads: 1, ORTLibrary: lib})
		if errors.Is(err, ErrNoCgo) {
			t.Skip(err)
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, batch := range tc.batches {
			x := randomInputs(ref, batch, rng)
			if batch == 1 {
				if in == nil {
					in = x
				}
				x = in
			}
			want, err := ref.Run(context.Background(), x)
			if err != nil {
				t.Fatalf("%s batch %d: ort: %v", tc.form, batch, err)
			}
			for _, threads := range []int{1, 2} {
				nat, err := OpenFile(Native, path, Options{Threads: threads})
				if err != nil {
					t.Fatalf("%s: native: %v", tc.form, err)
				}
				got, err := nat.Run(context.Background(), x)
				nat.Close()
				if err != nil {
					t.Fatalf("%s batch %d threads %d: native: %v", tc.form, batch, threads, err)
				}
				compareOutputs(t, got, want)
				if batch == 1 {
					outs[tc.form] = got["latent"]
				}
			}
		}
		ref.Close()
	}
	if e := relErr(outs["aggregate"].Data, outs["mixed"].Data); !(e <= 1e-5) {
		t.Errorf("aggregated and mixed forms differ: relative error %.3g", e)
	}
}

// TestDynamicConvAggregateRefusesBatch checks that the aggregated form fails
// at a batch other than 1 in the native engine, as in ONNX Runtime, instead
// of computing one sample's kernel for all.
func TestDynamicConvAggregateRefusesBatch(t *testing.T) {
	path := filepath.Join("testdata", "dycnn_aggregate.onnx")
	nat, err := OpenFile(Native, path, Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer nat.Close()
	in := randomInputs(nat, 2, rand.New(rand.NewPCG(1, 2)))
	if _, err := nat.Run(context.Background(), in); err == nil {
		t.Fatal("native ran the batch-1 aggregated graph at batch 2")
	}
}
