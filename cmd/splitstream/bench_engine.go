package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/splitstream/splitstream/models"
)

func init() {
	registerBench(benchMode{name: "engine", summary: "time inference engines on one ONNX graph, interleaved", run: runBenchEngine})
}

func runBenchEngine(ctx context.Context, args []string) error {
	return benchEngine(ctx, args, os.Stdout)
}

func benchEngine(ctx context.Context, args []string, w io.Writer) error {
	fs := newFlagSet("bench engine", "--model FILE [flags]",
		"Run the engines interleaved on the same random input and print each one's median\n"+
			"time per run and the ratio native/ort.")
	model := fs.String("model", "", "ONNX `file` to run (required)")
	engines := fs.String("engines", "native,ort", "comma-separated `engines` to time: native, ort")
	threads := fs.Int("threads", 0, "threads per run (0: one per CPU for native, ORT's default for ort)")
	runs := fs.Int("runs", 30, "timed runs per engine")
	warmup := fs.Int("warmup", 3, "untimed runs per engine first")
	batch := fs.Int("batch", 1, "size of dynamic (batch) dimensions")
	ortLib := fs.String("ort-lib", "", "ONNX Runtime shared `library` (default $"+models.ORTLibraryEnv+", else "+models.DefaultORTLibrary+")")
	ep := fs.String("ep", "", "ONNX Runtime execution provider: cpu, cuda, tensorrt (the latter two untested here)")
	asJSON := fs.Bool("json", false, "print one JSON object: native_ms, ort_ms, ratio (native over ort)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *model == "" || fs.NArg() > 0 || *runs < 1 || *batch < 1 {
		fs.Usage()
		return errUsage
	}
	kinds := strings.Split(*engines, ",")
	opts := models.Options{Threads: *threads, ORTLibrary: *ortLib, ExecutionProvider: *ep}
	var engs []models.Engine
	for _, k := range kinds {
		e, err := models.OpenFile(k, *model, opts)
		if err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		defer e.Close()
		engs = append(engs, e)
	}
	in := map[string]models.Tensor{}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, info := range engs[0].Inputs() {
		t := models.Tensor{Shape: make([]int, len(info.Shape))}
		n := 1
		for k, d := range info.Shape {
			if d < 0 {
				d = *batch
			}
			t.Shape[k] = d
			n *= d
		}
		t.Data = make([]float32, n)
		for i := range t.Data {
			t.Data[i] = rng.Float32()
		}
		in[info.Name] = t
	}
	times := make([][]float64, len(engs))
	for r := -*warmup; r < *runs; r++ {
		for k, e := range engs {
			start := time.Now()
			if _, err := e.Run(ctx, in); err != nil {
				return fmt.Errorf("%s: %w", kinds[k], err)
			}
			if r >= 0 {
				times[k] = append(times[k], float64(time.Since(start).Nanoseconds())/1e6)
			}
		}
	}
	med := map[string]float64{}
	for k, ts := range times {
		sort.Float64s(ts)
		med[kinds[k]] = ts[len(ts)/2]
		if !*asJSON {
			fmt.Fprintf(w, "%-7s median %8.2f ms  min %8.2f ms  max %8.2f ms  (%d runs, threads %d, batch %d)\n",
				kinds[k], ts[len(ts)/2], ts[0], ts[len(ts)-1], len(ts), *threads, *batch)
		}
	}
	nat, hasNat := med[models.Native]
	ref, hasRef := med[models.ORT]
	if *asJSON {
		out := map[string]float64{}
		if hasNat {
			out["native_ms"] = nat
		}
		if hasRef {
			out["ort_ms"] = ref
		}
		if hasNat && hasRef {
			out["ratio"] = nat / ref
		}
		return json.NewEncoder(w).Encode(out)
	}
	if hasNat && hasRef {
		fmt.Fprintf(w, "ratio native/ort: %.2f\n", nat/ref)
	}
	return nil
}
