package main

import (
	"flag"
	"fmt"
	"strings"

	"github.com/splitstream/splitstream/bundle"
	"github.com/splitstream/splitstream/codec"
	"github.com/splitstream/splitstream/models"
	"github.com/splitstream/splitstream/pipeline"
)

// This file defines the flags that several commands share, once.

// newFlagSet returns a flag set whose --help prints the summary, the
// argument synopsis and the flags.
func newFlagSet(name, synopsis, summary string) *flag.FlagSet {
	fs := flag.NewFlagSet("splitstream "+name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "%s\n\nUsage:\n  splitstream %s %s\n\nFlags:\n", summary, name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// listFlag is a repeatable flag that also takes comma-separated values.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error {
	for v := range strings.SplitSeq(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

const engineHelp = "inference engine: native (pure Go), ort (ONNX Runtime; needs cgo and $" + models.ORTLibraryEnv + ") or auto (ort where its library loads, else native)"

// engineFlag is --engine.
func engineFlag(fs *flag.FlagSet) *string { return fs.String("engine", models.Native, engineHelp) }

// engineFlags are --engine, defaulting to kind, and --threads.
func engineFlags(fs *flag.FlagSet, kind string) *pipeline.Engine {
	e := &pipeline.Engine{}
	fs.StringVar(&e.Kind, "engine", kind, engineHelp)
	fs.IntVar(&e.Options.Threads, "threads", 0, "threads per graph run (0: one per CPU for native, ONNX Runtime's default for ort)")
	return e
}

// codecFlag is --codec: a baseline codec into c instead of the bundle's own
// (nil). Whether it fits the bundle is checked where its encoder is made.
func codecFlag(fs *flag.FlagSet, c *codec.Codec) {
	fs.Func("codec", "send with a baseline codec instead of the bundle's: raw-f32, int8-zstd (split bundles); png, jpeg[:Q], webp[:Q] (full bundles)", func(spec string) (err error) {
		*c, err = codec.Baseline(spec)
		return err
	})
}

// bundleFlag is --bundle for the commands that take one bundle.
func bundleFlag(fs *flag.FlagSet) *string {
	return fs.String("bundle", "", "bundle directory (default: the first split bundle under "+bundle.ZooDir+")")
}

// loadBundle loads dir, or the first split bundle of the zoo when dir is empty.
func loadBundle(dir string) (*bundle.Bundle, error) {
	if dir == "" {
		return bundle.FirstSplit(bundle.ZooDir)
	}
	return bundle.Load(dir)
}
