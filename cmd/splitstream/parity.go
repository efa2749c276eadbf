package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/splitstream/splitstream/models"
	"github.com/splitstream/splitstream/models/bundle"
	"github.com/splitstream/splitstream/parity"
)

func init() {
	register(command{name: "parity", summary: "run a bundle's graphs on its reference vectors with each engine and print the differences from PyTorch", run: runParity})
}

func runParity(ctx context.Context, args []string) error {
	fs := newFlagSet("parity", "--bundle DIR [--engines native,ort] [--testset DIR] [--json]",
		"Run every graph of a bundle on its reference inputs (reference/) with each engine and print\n"+
			"the largest difference of its outputs from PyTorch's; for a split bundle also code the\n"+
			"reference latents with the learned codec, and the reference images through the edge, and\n"+
			"count the strings equal to the reference strings. The exporter calls it as its parity gate.")
	dir := fs.String("bundle", "", "bundle directory")
	engines := fs.String("engines", models.Native+","+models.ORT, "comma-separated engines to run")
	testset := fs.String("testset", "", "test set folder of the reference images (default: the bundle's, if any)")
	threads := fs.Int("threads", 0, "threads per graph run (0: the engine's default)")
	asJSON := fs.Bool("json", false, "print the report as one JSON object")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return fmt.Errorf("--bundle is required")
	}
	b, err := bundle.Load(*dir)
	if err != nil {
		return err
	}
	rep, err := parity.Check(ctx, b, parity.Options{Engines: strings.Split(*engines, ","),
		EngineOptions: models.Options{Threads: *threads}, TestSet: *testset})
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(os.Stdout).Encode(rep)
	}
	fmt.Printf("bundle %s (%s), %d reference images\n", rep.Bundle, rep.Kind, rep.Images)
	fmt.Printf("  %-16s %-7s %14s %14s  %s\n", "graph", "engine", "max |diff|", "max |ref|", "output")
	for _, g := range rep.Graphs {
		fmt.Printf("  %-16s %-7s %14.3g %14.3g  %s\n", g.Graph, g.Engine, g.MaxAbsDiff, g.MaxAbsRef, g.Output)
	}
	if rep.Kind == bundle.KindSplit {
		fmt.Printf("  codec on the reference latents: %d/%d strings, %d/%d symbol sets equal\n", rep.CodecEqual, rep.Images, rep.CodecSymbolsEqual, rep.Images)
		for _, s := range rep.Strings {
			fmt.Printf("  edge (%s, from the %s): %d/%d strings equal, %d of %d symbols differ\n", s.Engine, s.EdgeInput, s.EdgeEqual, s.Images, s.SymbolsDiffer, s.Symbols)
		}
		if rep.PreprocessMaxAbsDiff >= 0 {
			fmt.Printf("  preprocessing of the test images: max |diff| %.3g from the reference inputs\n", rep.PreprocessMaxAbsDiff)
		}
	}
	return nil
}
