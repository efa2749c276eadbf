package engine

import (
	"context"
	"fmt"
	"io"

	"github.com/splitstream/splitstream/bundle"
	"github.com/splitstream/splitstream/models"
)

// Row is one graph of a bundle at one thread count: each engine's median
// time and the ratio native/ort. Its JSON keys are those of the bench's
// --json output.
type Row struct {
	Bundle   string  `json:"bundle"`
	Graph    string  `json:"graph"`
	Threads  int     `json:"threads"`
	NativeMS float64 `json:"native_ms,omitempty"`
	ORTMS    float64 `json:"ort_ms,omitempty"`
	Ratio    float64 `json:"ratio,omitempty"`
}

// RowOf turns a Result into a Row.
func RowOf(bundleName, graph string, r *Result) Row {
	row := Row{Bundle: bundleName, Graph: graph, Threads: r.Threads,
		NativeMS: r.Engines[models.Native].Median, ORTMS: r.Engines[models.ORT].Median}
	row.Ratio, _ = r.Ratio()
	return row
}

// Zoo times every graph of every bundle in dirs (the bundles under
// bundle.ZooDir when empty) at each thread count, graphs outermost so that
// one graph's thread counts are measured close together. progress, if not
// nil, gets one line per row.
func Zoo(ctx context.Context, dirs []string, threads []int, o Options, progress io.Writer) ([]Row, error) {
	if len(dirs) == 0 {
		if dirs = bundle.ZooDirs(bundle.ZooDir); len(dirs) == 0 {
			return nil, fmt.Errorf("no bundles under %s (run from the repository root, or pass --bundle)", bundle.ZooDir)
		}
	}
	var rows []Row
	for _, d := range dirs {
		b, err := bundle.Load(d)
		if err != nil {
			return nil, err
		}
		for _, g := range b.GraphFiles() {
			for _, t := range threads {
				o.Threads = t
				r, err := Time(ctx, g.Path, o)
				if err != nil {
					return nil, fmt.Errorf("%s %s: %w", b.Name, g.Name, err)
				}
				row := RowOf(b.Name, g.Name, r)
				if progress != nil {
					fmt.Fprintf(progress, "bench engine: %s %s threads %d: native %.2f ms, ort %.2f ms\n", row.Bundle, row.Graph, t, row.NativeMS, row.ORTMS)
				}
				rows = append(rows, row)
			}
		}
	}
	return rows, nil
}

// WriteTable writes rows as a Markdown table.
func WriteTable(w io.Writer, rows []Row) error {
	fmt.Fprintln(w, "| bundle | graph | threads | native ms | ort ms | ratio |")
	fmt.Fprintln(w, "| --- | --- | ---: | ---: | ---: | ---: |")
	for _, r := range rows {
		ratio := "-"
		if r.Ratio > 0 {
			ratio = fmt.Sprintf("%.2f", r.Ratio)
		}
		if _, err := fmt.Fprintf(w, "| %s | %s | %d | %.2f | %.2f | %s |\n", r.Bundle, r.Graph, r.Threads, r.NativeMS, r.ORTMS, ratio); err != nil {
			return err
		}
	}
	return nil
}
