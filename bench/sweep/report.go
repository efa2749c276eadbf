package sweep

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/splitstream/splitstream/bench/link/probe"
	"github.com/splitstream/splitstream/bench/report"
)

// Report runs the sweep while watching what other processes take of the
// CPUs, and returns its report: meta completed with the machine, that CPU
// share, the wall time and notes on anything that qualifies the figures.
func Report(ctx context.Context, o Options, meta report.Meta) (*report.Report, error) {
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	watch := probe.WatchCPU()
	start := time.Now()
	rows, err := Run(ctx, o)
	if err != nil {
		return nil, err
	}
	busy, cpuFigures := watch.Busy()
	meta.Date = start.UTC().Format(time.RFC3339)
	meta.Machine = report.Machine() + "; during the run " + cpuFigures
	meta.Seconds = time.Since(start).Seconds()
	if busy {
		fmt.Fprintf(o.Progress, "warning: the CPUs were busy during the run (%s); latencies include waiting for a CPU\n", cpuFigures)
		meta.Notes = append(meta.Notes, fmt.Sprintf("The machine was busy during the run (%s): the latencies include time spent waiting for a CPU.", cpuFigures))
	}
	if rows[0].AccuracyImages < meta.Images {
		meta.Notes = append(meta.Notes, fmt.Sprintf("The test set has %d images: all were used.", rows[0].AccuracyImages))
	}
	return &report.Report{Meta: meta, Rows: rows}, nil
}
