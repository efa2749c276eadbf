package native

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/splitstream/splitstream/models/internal/onnx"
)

// BenchmarkZooProfile runs every shipped graph (../zoo/*/*.onnx) at 1 and
// 2 threads and logs the time per step and per operator (run with -v), with
// each step's best run. PROFILE_PAUSE (a duration, e.g. 20ms) idles before
// each run, as BenchmarkZoo does, to see the runs that start cold.
func BenchmarkZooProfile(b *testing.B) {
	pause, _ := time.ParseDuration(os.Getenv("PROFILE_PAUSE"))
	graphs, _ := filepath.Glob(filepath.Join("..", "zoo", "*", "*.onnx"))
	if len(graphs) == 0 {
		b.Skip("no shipped graphs under ../zoo")
	}
	for _, path := range graphs {
		name := filepath.Base(filepath.Dir(path)) + "/" + strings.TrimSuffix(filepath.Base(path), ".onnx")
		for _, threads := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/threads=%d", name, threads), func(b *testing.B) {
				raw, err := os.ReadFile(path)
				if err != nil {
					b.Fatal(err)
				}
				om, err := onnx.Decode(raw)
				if err != nil {
					b.Fatal(err)
				}
				m, err := Load(om, threads)
				if err != nil {
					b.Fatal(err)
				}
				defer m.Close()
				rng := rand.New(rand.NewPCG(1, 2))
				var in []Tensor
				for _, v := range m.Inputs() {
					shape := make([]int, len(v.Shape))
					for k, d := range v.Shape {
						shape[k] = max(int(d), 1)
					}
					in = append(in, Tensor{Shape: shape, Data: randSlice(rng, prod(shape))})
				}
				ctx := context.Background()
				for range 3 {
					if _, err := m.Run(ctx, in); err != nil {
						b.Fatal(err)
					}
				}
				var prof Profile
				for b.Loop() {
					if pause > 0 {
						b.StopTimer()
						time.Sleep(pause)
						b.StartTimer()
					}
					if _, err := m.RunProfiled(ctx, in, &prof); err != nil {
						b.Fatal(err)
					}
				}
				logProfile(b, &prof)
			})
		}
	}
}

// logProfile logs the steps that take at least 2% of the total, and the
// total per operator.
func logProfile(b *testing.B, prof *Profile) {
	var total, best time.Duration
	byOp := map[string]time.Duration{}
	for _, s := range prof.Steps {
		total += s.Time
		best += s.Best
		byOp[s.Op] += s.Time
	}
	per := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(prof.Runs) / 1e3 }
	var sb strings.Builder
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 }
	fmt.Fprintf(&sb, "total %.3f ms/run over %d steps (sum of each step's best: %.3f ms)\n", per(total), len(prof.Steps), ms(best))
	for k, s := range prof.Steps {
		if s.Time*50 >= total {
			fmt.Fprintf(&sb, "  #%-3d %-10s %.3f ms %4.1f%% best %.3f ms  %s\n", k, s.Op, per(s.Time), 100*float64(s.Time)/float64(total), ms(s.Best), s.Desc)
		}
	}
	ops := make([]string, 0, len(byOp))
	for op := range byOp {
		ops = append(ops, op)
	}
	sort.Slice(ops, func(i, j int) bool { return byOp[ops[i]] > byOp[ops[j]] })
	for _, op := range ops {
		fmt.Fprintf(&sb, "  %-14s %.3f ms %4.1f%%\n", op, per(byOp[op]), 100*float64(byOp[op])/float64(total))
	}
	b.Log(sb.String())
}
