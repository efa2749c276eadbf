package models

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"testing"
)

// BenchmarkNative times the native engine on each reference graph at batch
// 1 with 1 and 2 threads, reporting ms/op and the allocations of a run
// after warm-up (the returned output tensors are the only large ones).
func BenchmarkNative(b *testing.B) {
	for _, name := range refGraphs {
		for _, threads := range []int{1, 2} {
			b.Run(name+"/threads="+string(rune('0'+threads)), func(b *testing.B) {
				e, err := OpenFile(Native, filepath.Join("testdata", name+".onnx"), Options{Threads: threads})
				if err != nil {
					b.Fatal(err)
				}
				defer e.Close()
				in := randomInputs(e, 1, rand.New(rand.NewPCG(1, 2)))
				ctx := context.Background()
				if _, err := e.Run(ctx, in); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					if _, err := e.Run(ctx, in); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/1e6/float64(b.N), "ms/op")
			})
		}
	}
}
