package trace

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/splitstream/splitstream/bench/link"
)

// Command is a `splitstream bench trace` run as its flags give it.
type Command struct {
	Options
	UpFile, DownFile, Queue string
	Bundles                 []string
	JPEGQ, WebPQ            string
	EdgeFull, JSON          bool
	Out                     string // report directory; empty: none
	Args                    []string
}

// Execute loads the traces and bundles, runs the bench, writes the report
// to Out and prints the rows to stdout (a table, or JSON); progress goes to
// stderr.
func (c *Command) Execute(ctx context.Context, stdout, stderr io.Writer) error {
	o := c.Options
	var err error
	if o.Up, err = link.LoadTrace(c.UpFile); err != nil {
		return err
	}
	if o.Down, err = link.LoadTrace(c.DownFile); err != nil {
		return err
	}
	if o.Queue, err = link.ParseQueue(c.Queue); err != nil {
		return err
	}
	if o.Strategies, _, err = Strategies(c.Bundles, c.JPEGQ, c.WebPQ, c.EdgeFull); err != nil {
		return err
	}
	o.Progress = stderr
	meta := Meta{Command: "splitstream bench trace " + strings.Join(c.Args, " "), Date: time.Now().UTC().Format(time.RFC3339),
		LoadBefore: LoadAvg(), EdgeFull: c.EdgeFull}
	run, err := Bench(ctx, o)
	if err != nil {
		return err
	}
	meta.LoadAfter = LoadAvg()
	rep := run.NewReport(meta)
	if c.Out != "" {
		written, err := run.WriteFiles(c.Out, rep)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "bench trace: wrote %s\n", strings.Join(written, ", "))
	}
	if c.JSON {
		return WriteJSON(stdout, rep.Rows)
	}
	return WriteMarkdown(stdout, rep)
}
