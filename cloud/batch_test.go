package cloud

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/splitstream/splitstream/models"
	"github.com/splitstream/splitstream/wire"
)

// openClsHead opens the engine branch's reference classification head
// (latent 24 x 28 x 28 -> 10 logits, dynamic batch) with the native engine.
func openClsHead(tb testing.TB, threads int) models.Engine {
	return openClsHeadWith(tb, models.Native, threads)
}

func openClsHeadWith(tb testing.TB, kind string, threads int) models.Engine {
	eng, err := models.OpenFile(kind, "../models/testdata/cls_head.onnx", models.Options{Threads: threads})
	if err != nil {
		tb.Skipf("reference graph not available: %v", err)
	}
	return eng
}

func latentInput(seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 3))
	x := make([]float32, 24*28*28)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	return x
}

// TestBatchedEqualsSingle checks that a batched run gives each request the
// outputs it gets alone.
func TestBatchedEqualsSingle(t *testing.T) {
	eng := openClsHead(t, 1)
	s, err := newStage(wire.HeadStage(wire.Classify), eng, []string{"logits"}, BatchOptions{MaxBatch: 4, Wait: 50 * time.Millisecond}, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	var sizes []int
	var mu sync.Mutex
	s.observe = func(_ wire.Stage, n int) { mu.Lock(); sizes = append(sizes, n); mu.Unlock() }
	shape := []int{24, 28, 28}
	const n = 4
	outs := make([][]float32, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := s.run(context.Background(), latentInput(uint64(i)), shape)
			if err != nil {
				t.Error(err)
				return
			}
			if got := r["logits"].Shape; len(got) != 2 || got[0] != 1 || got[1] != 10 {
				t.Errorf("logits shape %v", got)
			}
			outs[i] = r["logits"].Data
		}()
	}
	wg.Wait()
	if len(sizes) == len(outs) {
		t.Logf("no batch formed (sizes %v)", sizes)
	}
	for i := range n {
		alone, err := eng.Run(context.Background(), map[string]models.Tensor{"latent": {Shape: []int{1, 24, 28, 28}, Data: latentInput(uint64(i))}})
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range alone["logits"].Data {
			if d := v - outs[i][k]; d > 1e-4 || d < -1e-4 {
				t.Fatalf("request %d logit %d: batched %v, alone %v", i, k, outs[i][k], v)
			}
		}
	}
	t.Logf("batch sizes %v", sizes)
}

// BenchmarkBatching measures the throughput of one head under 4 x GOMAXPROCS
// concurrent requests, with and without dynamic batching, on each engine
// with one thread per run (the ort case is skipped without ONNX Runtime).
func BenchmarkBatching(b *testing.B) {
	for _, c := range []struct {
		engine   string
		maxBatch int
		wait     time.Duration
	}{{models.Native, 1, 0}, {models.Native, 8, 0}, {models.Native, 8, 2 * time.Millisecond},
		{models.ORT, 1, 0}, {models.ORT, 8, 0}, {models.ORT, 8, 2 * time.Millisecond}} {
		b.Run(fmt.Sprintf("%s/max-batch=%d/wait=%v", c.engine, c.maxBatch, c.wait), func(b *testing.B) {
			maxBatch := c.maxBatch
			eng := openClsHeadWith(b, c.engine, 1)
			s, err := newStage(wire.HeadStage(wire.Classify), eng, []string{"logits"}, BatchOptions{MaxBatch: maxBatch, Wait: c.wait}, 2)
			if err != nil {
				b.Fatal(err)
			}
			defer s.close()
			var runs atomic.Int64
			s.observe = func(wire.Stage, int) { runs.Add(1) }
			x := latentInput(1)
			shape := []int{24, 28, 28}
			b.SetParallelism(4) // 4 x GOMAXPROCS callers
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := s.run(context.Background(), x, shape); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "requests/s")
			b.ReportMetric(float64(b.N)/float64(max(runs.Load(), 1)), "requests/run")
		})
	}
}
