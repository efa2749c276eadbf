package engine

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"strings"
	"time"

	"github.com/splitstream/splitstream/bundle"
	"github.com/splitstream/splitstream/models"
)

// Synopsis and Help describe the command that runs a Command.
const (
	Synopsis = "--model FILE | --zoo [flags]"
	Help     = "Run the engines interleaved on the same random input and print each one's median\n" +
		"time per run and the ratio native/ort. --zoo times every graph of every bundle under\n" +
		bundle.ZooDir + " at 1 and 2 threads (or --threads) and prints a table."
)

// Command is a `splitstream bench engine` run as its flags give it.
type Command struct {
	Options
	Model, Threads string
	Zoo, JSON      bool
	Bundles        []string
}

// Flags registers the command's flags on fs and returns the Command they
// fill; Execute checks what they say.
func Flags(fs *flag.FlagSet) *Command {
	c := &Command{}
	list := func(dst *[]string) func(string) error {
		return func(v string) error { *dst = append(*dst, strings.Split(v, ",")...); return nil }
	}
	fs.StringVar(&c.Model, "model", "", "ONNX `file` to run")
	fs.BoolVar(&c.Zoo, "zoo", false, "time every graph of every bundle under "+bundle.ZooDir+" (or of the --bundle dirs)")
	fs.Func("bundle", "with --zoo: bundle `dirs` instead of the zoo (repeatable, or comma-separated)", list(&c.Bundles))
	fs.Func("engines", "comma-separated `engines` to time: native, ort (default native,ort)", list(&c.Engines))
	fs.StringVar(&c.Threads, "threads", "", "threads per run, comma-separated for several (0: one per CPU for native, ORT's default for ort; default 0, or 1,2 with --zoo)")
	fs.IntVar(&c.Runs, "runs", 30, "timed runs per engine")
	fs.IntVar(&c.Warmup, "warmup", 3, "untimed runs per engine first")
	fs.IntVar(&c.Batch, "batch", 1, "size of dynamic (batch) dimensions")
	fs.StringVar(&c.ORTLibrary, "ort-lib", "", "ONNX Runtime shared `library` (default $"+models.ORTLibraryEnv+", else "+models.DefaultORTLibrary+")")
	fs.StringVar(&c.ExecutionProvider, "ep", "", "ONNX Runtime execution provider: cpu, cuda, tensorrt (the latter two untested here)")
	fs.DurationVar(&c.Pause, "pause", 50*time.Millisecond, "idle time before each run, so that one engine's spinning threads do not run into the next engine's run")
	fs.BoolVar(&c.JSON, "json", false, "print JSON: one object (native_ms, ort_ms, ratio) for --model, an array of rows for --zoo")
	return c
}

// ErrUsage says that the command's flags do not describe a run.
var ErrUsage = errors.New("bench engine: give --model FILE or --zoo, runs and batch above 0")

// Execute times the model, or every graph of the zoo, and writes the
// result to w (text or JSON); progress goes to stderr.
func (c *Command) Execute(ctx context.Context, w, stderr io.Writer) error {
	ts, err := ParseThreads(c.Threads, c.Zoo)
	if err != nil {
		return err
	}
	if (c.Model == "") == !c.Zoo || c.Runs < 1 || c.Batch < 1 {
		return ErrUsage
	}
	if c.Zoo {
		rows, err := Zoo(ctx, c.Bundles, ts, c.Options, stderr)
		switch {
		case err != nil:
			return err
		case c.JSON:
			return json.NewEncoder(w).Encode(rows)
		}
		return WriteTable(w, rows)
	}
	for _, t := range ts { // one result per thread count, in order
		c.Options.Threads = t
		r, err := Time(ctx, c.Model, c.Options)
		if err == nil && c.JSON {
			err = r.WriteJSON(w)
		} else if err == nil {
			err = r.WriteText(w)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
