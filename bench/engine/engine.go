// Package engine times inference engines against each other on ONNX graphs:
// the engines run interleaved on the same random input, so that a busy
// machine slows them alike and their ratio stays meaningful.
package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/splitstream/splitstream/models"
)

// Options configure a timing. The zero value of a field gives its default.
type Options struct {
	// Engines to time (default native and ort).
	Engines []string
	// Threads per run (0: one per CPU for native, ONNX Runtime's default for ort).
	Threads int
	// Runs is the number of timed runs per engine (default 30); Warmup the
	// untimed runs before them (0: none).
	Runs, Warmup int
	// Batch is the size of dynamic (batch) dimensions (default 1).
	Batch int
	// Pause is the idle time before each run, so that one engine's spinning
	// threads do not run into the next engine's run (0: none).
	Pause time.Duration
	// ORTLibrary and ExecutionProvider are passed to the ort engine.
	ORTLibrary, ExecutionProvider string
}

func (o *Options) defaults() {
	if len(o.Engines) == 0 {
		o.Engines = []string{models.Native, models.ORT}
	}
	if o.Runs <= 0 {
		o.Runs = 30
	}
	if o.Batch <= 0 {
		o.Batch = 1
	}
}

// Timing is one engine's run times on one graph, in milliseconds.
type Timing struct {
	Median, Min, Max float64
	Runs             int
}

// Result is one graph timed with every engine.
type Result struct {
	Model   string
	Threads int
	Batch   int
	Engines map[string]Timing
}

// Ratio is the native engine's median over ONNX Runtime's, when both ran.
func (r *Result) Ratio() (float64, bool) {
	n, okN := r.Engines[models.Native]
	o, okO := r.Engines[models.ORT]
	if !okN || !okO || o.Median <= 0 {
		return 0, false
	}
	return n.Median / o.Median, true
}

// Time runs the graph in file with every engine of o, interleaved.
func Time(ctx context.Context, file string, o Options) (*Result, error) {
	o.defaults()
	opts := models.Options{Threads: o.Threads, ORTLibrary: o.ORTLibrary, ExecutionProvider: o.ExecutionProvider}
	var engs []models.Engine
	defer func() {
		for _, e := range engs {
			e.Close()
		}
	}()
	for _, k := range o.Engines {
		e, err := models.OpenFile(k, file, opts)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		engs = append(engs, e)
	}
	in := randomInputs(engs[0].Inputs(), o.Batch)
	times := make([][]float64, len(engs))
	for r := -max(o.Warmup, 0); r < o.Runs; r++ {
		for k, e := range engs {
			if o.Pause > 0 {
				select {
				case <-ctx.Done():
					return nil, ctx.Err()
				case <-time.After(o.Pause):
				}
			}
			start := time.Now()
			if _, err := e.Run(ctx, in); err != nil {
				return nil, fmt.Errorf("%s: %w", o.Engines[k], err)
			}
			if r >= 0 {
				times[k] = append(times[k], float64(time.Since(start).Nanoseconds())/1e6)
			}
		}
	}
	res := &Result{Model: file, Threads: o.Threads, Batch: o.Batch, Engines: map[string]Timing{}}
	for k, ts := range times {
		sort.Float64s(ts)
		res.Engines[o.Engines[k]] = Timing{Median: ts[len(ts)/2], Min: ts[0], Max: ts[len(ts)-1], Runs: len(ts)}
	}
	return res, nil
}

// randomInputs makes a tensor of uniform [0, 1) values for every input,
// with dynamic dimensions set to batch, from a fixed seed.
func randomInputs(infos []models.TensorInfo, batch int) map[string]models.Tensor {
	in := map[string]models.Tensor{}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, info := range infos {
		t := models.Tensor{Shape: make([]int, len(info.Shape))}
		n := 1
		for k, d := range info.Shape {
			if d < 0 {
				d = batch
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
	return in
}

// WriteText writes each engine's median, min and max and the ratio.
func (r *Result) WriteText(w io.Writer) error {
	for _, k := range []string{models.Native, models.ORT} {
		if t, ok := r.Engines[k]; ok {
			fmt.Fprintf(w, "%-7s median %8.2f ms  min %8.2f ms  max %8.2f ms  (%d runs, threads %d, batch %d)\n",
				k, t.Median, t.Min, t.Max, t.Runs, r.Threads, r.Batch)
		}
	}
	if ratio, ok := r.Ratio(); ok {
		_, err := fmt.Fprintf(w, "ratio native/ort: %.2f\n", ratio)
		return err
	}
	return nil
}

// WriteJSON writes one JSON object: ENGINE_ms for each engine's median and
// ratio (native over ort) when both ran.
func (r *Result) WriteJSON(w io.Writer) error {
	out := map[string]float64{}
	for k, t := range r.Engines {
		out[k+"_ms"] = t.Median
	}
	if ratio, ok := r.Ratio(); ok {
		out["ratio"] = ratio
	}
	return json.NewEncoder(w).Encode(out)
}

// ParseThreads reads thread counts separated by ','. Empty means the
// engines' defaults (0), or 1 and 2 when zoo is set.
func ParseThreads(s string, zoo bool) ([]int, error) {
	switch {
	case s == "" && zoo:
		return []int{1, 2}, nil
	case s == "":
		return []int{0}, nil
	}
	var ts []int
	for v := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 {
			return nil, fmt.Errorf("threads %q: want counts >= 0", s)
		}
		ts = append(ts, n)
	}
	return ts, nil
}
