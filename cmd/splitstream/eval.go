package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/splitstream/splitstream/models"
	"github.com/splitstream/splitstream/pipeline"
)

func init() {
	register(command{name: "eval", summary: "run a bundle's test set through the split path in one process and print its metrics", run: runEval})
}

func runEval(ctx context.Context, args []string) error {
	fs := newFlagSet("eval", "[--bundle DIR] [--engine native|ort] [--json]",
		"Run a bundle's test set through the whole split path in one process: preprocessing,\n"+
			"encoder, codec (encode and decode), trunk and heads, post-processing; print top-1,\n"+
			"mAP@0.5, mIoU and mean bytes per image next to the metrics recorded at export.")
	dir := bundleFlag(fs)
	eng := engineFlags(fs, models.Native)
	codecSpec := codecFlag(fs)
	asJSON := fs.Bool("json", false, "print one JSON object: top1, map50, miou, bytes_per_image, images")
	limit := fs.Int("limit", 0, "evaluate only the first N test images (0: all)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	b, err := loadBundle(*dir)
	if err != nil {
		return err
	}
	c, err := baseline(*codecSpec)
	if err != nil {
		return err
	}
	start := time.Now()
	r, err := pipeline.Evaluate(ctx, b, pipeline.EvalOptions{Engine: *eng, Codec: c, Limit: *limit})
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(os.Stdout).Encode(r)
	}
	r.WriteVersusRecorded(os.Stdout, b, eng.Kind)
	fmt.Printf("  %.1f s (%.1f ms/image)\n", time.Since(start).Seconds(), float64(time.Since(start).Milliseconds())/float64(max(r.Images, 1)))
	return nil
}
