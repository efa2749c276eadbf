package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"strings"
	"time"

	"github.com/splitstream/splitstream/bench/engine"
	"github.com/splitstream/splitstream/bundle"
	"github.com/splitstream/splitstream/models"
)

func init() {
	register(command{name: "bench engine", summary: "time inference engines on ONNX graphs, interleaved", run: func(ctx context.Context, args []string) error {
		return benchEngine(ctx, args, os.Stdout)
	}})
}

func benchEngine(ctx context.Context, args []string, w io.Writer) error {
	fs := newFlagSet("bench engine", "--model FILE | --zoo [flags]",
		"Run the engines interleaved on the same random input and print each one's median\n"+
			"time per run and the ratio native/ort. --zoo times every graph of every bundle under\n"+
			bundle.ZooDir+" at 1 and 2 threads (or --threads) and prints a table.")
	model := fs.String("model", "", "ONNX `file` to run")
	zoo := fs.Bool("zoo", false, "time every graph of every bundle under "+bundle.ZooDir+" (or of the --bundle dirs)")
	var dirs listFlag
	fs.Var(&dirs, "bundle", "with --zoo: bundle `dirs` instead of the zoo (repeatable, or comma-separated)")
	engines := fs.String("engines", "native,ort", "comma-separated `engines` to time: native, ort")
	threads := fs.String("threads", "", "threads per run, comma-separated for several (0: one per CPU for native, ORT's default for ort; default 0, or 1,2 with --zoo)")
	runs := fs.Int("runs", 30, "timed runs per engine")
	warmup := fs.Int("warmup", 3, "untimed runs per engine first")
	batch := fs.Int("batch", 1, "size of dynamic (batch) dimensions")
	ortLib := fs.String("ort-lib", "", "ONNX Runtime shared `library` (default $"+models.ORTLibraryEnv+", else "+models.DefaultORTLibrary+")")
	ep := fs.String("ep", "", "ONNX Runtime execution provider: cpu, cuda, tensorrt (the latter two untested here)")
	pause := fs.Duration("pause", 50*time.Millisecond, "idle time before each run, so that one engine's spinning threads do not run into the next engine's run")
	asJSON := fs.Bool("json", false, "print JSON: one object (native_ms, ort_ms, ratio) for --model, an array of rows for --zoo")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ts, err := engine.ParseThreads(*threads, *zoo)
	if (*model == "") == !*zoo || fs.NArg() > 0 || *runs < 1 || *batch < 1 || err != nil {
		fs.Usage()
		if err != nil {
			return err
		}
		return errUsage
	}
	o := engine.Options{Engines: strings.Split(*engines, ","), Runs: *runs, Warmup: *warmup, Batch: *batch,
		Pause: *pause, ORTLibrary: *ortLib, ExecutionProvider: *ep}
	if o.Warmup == 0 {
		o.Warmup = -1 // none, not the default
	}
	if o.Pause == 0 {
		o.Pause = -1
	}
	if *zoo {
		rows, err := engine.Zoo(ctx, dirs, ts, o, os.Stderr)
		switch {
		case err != nil:
			return err
		case *asJSON:
			return json.NewEncoder(w).Encode(rows)
		}
		return engine.WriteTable(w, rows)
	}
	o.Threads = ts[0]
	r, err := engine.Time(ctx, *model, o)
	switch {
	case err != nil:
		return err
	case *asJSON:
		return r.WriteJSON(w)
	}
	return r.WriteText(w)
}
