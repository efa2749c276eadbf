package models

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkZoo times every graph of every shipped bundle (zoo/*/*.onnx)
// with the native engine and ONNX Runtime side by side at 1 and 2 threads:
// each iteration runs native then ort on the same input, each after a short
// idle pause so that one engine's spinning threads do not run into the
// other's run. It reports each engine's median ms per run, the ratio
// native/ort of the medians, the same for each engine's fastest run (on
// a machine shared with other work, what each does when it has the
// cores), and native's allocations per run after warm-up. Run with a
// fixed count, e.g.
//
//	go test ./models -run '^$' -bench Zoo -benchtime 30x
func BenchmarkZoo(b *testing.B) {
	lib := ortLib(b)
	graphs, err := filepath.Glob(filepath.Join("zoo", "*", "*.onnx"))
	if err != nil || len(graphs) == 0 {
		b.Fatalf("no shipped graphs under zoo/: %v", err)
	}
	for _, path := range graphs {
		name := filepath.Base(filepath.Dir(path)) + "/" + strings.TrimSuffix(filepath.Base(path), ".onnx")
		for _, threads := range []int{1, 2} {
			b.Run(name+"/threads="+strconv.Itoa(threads), func(b *testing.B) {
				benchSideBySide(b, path, threads, lib)
			})
		}
	}
}

// zooPause is the idle time before each timed run.
const zooPause = 20 * time.Millisecond

func benchSideBySide(b *testing.B, path string, threads int, lib string) {
	opts := Options{Threads: threads, ORTLibrary: lib}
	nat, err := OpenFile(Native, path, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer nat.Close()
	ort, err := OpenFile(ORT, path, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer ort.Close()
	in := randomInputs(nat, 1, rand.New(rand.NewPCG(1, 2)))
	ctx := context.Background()
	run := func(e Engine) time.Duration {
		time.Sleep(zooPause)
		start := time.Now()
		if _, err := e.Run(ctx, in); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	for range 3 {
		run(nat)
		run(ort)
	}
	allocs := testing.AllocsPerRun(5, func() {
		if _, err := nat.Run(ctx, in); err != nil {
			b.Fatal(err)
		}
	})
	var tn, to []float64
	for b.Loop() {
		tn = append(tn, run(nat).Seconds()*1e3)
		to = append(to, run(ort).Seconds()*1e3)
	}
	mn, mo := median(tn), median(to)
	bn, bo := slices.Min(tn), slices.Min(to)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(mn, "native-ms")
	b.ReportMetric(mo, "ort-ms")
	b.ReportMetric(mn/mo, "ratio")
	b.ReportMetric(bn, "native-best-ms")
	b.ReportMetric(bo, "ort-best-ms")
	b.ReportMetric(bn/bo, "best-ratio")
	b.ReportMetric(allocs, "native-allocs/run")
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
