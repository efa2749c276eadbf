package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/splitstream/splitstream/edge"
	"github.com/splitstream/splitstream/models"
	"github.com/splitstream/splitstream/pipeline"
	"github.com/splitstream/splitstream/wire"
)

func init() {
	register(command{name: "eval", summary: "run a bundle's test set through the split path in one process and print its metrics", run: runEval})
	register(command{name: "demo", summary: "run cloud and edge on loopback with the shipped bundle and its test images", run: runDemo})
}

func runEval(ctx context.Context, args []string) error {
	fs := newFlagSet("eval", "[--bundle DIR] [--testset DIR] [--engine native|ort] [--json]",
		"Run a bundle's test set through the whole split path in one process: preprocessing,\n"+
			"encoder, codec (encode and decode), trunk and heads, post-processing; print top-1,\n"+
			"mAP@0.5, mIoU and mean bytes per image next to the metrics recorded at export.")
	dir, eng := bundleFlag(fs), engineFlags(fs, models.Native)
	var o pipeline.EvalOptions
	codecFlag(fs, &o.Codec)
	fs.StringVar(&o.TestSetDir, "testset", "", "test set folder (labels.json and images, docs/BUNDLE.md) instead of the bundle's own")
	fs.IntVar(&o.Limit, "limit", 0, "evaluate only the first N test images (0: all)")
	asJSON := fs.Bool("json", false, "print one JSON object: top1, map50, miou, bytes_per_image, images")
	if err := fs.Parse(args); err != nil {
		return err
	}
	b, err := loadBundle(*dir)
	if err != nil {
		return err
	}
	start := time.Now()
	o.Engine = *eng
	r, err := pipeline.Evaluate(ctx, b, o)
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

// demoResult is demo's --json object: eval's keys and the latencies.
type demoResult struct {
	pipeline.Scores
	Latency edge.Percentiles            `json:"latency_ms"`
	Stages  map[string]edge.Percentiles `json:"stages_ms"`
}

func runDemo(ctx context.Context, args []string) error {
	fs := newFlagSet("demo", "[--json] [--bundle DIR] [flags]",
		"Start a cloud server and an edge agent in one process on loopback (QUIC with mutual TLS\n"+
			"from ephemeral in-memory certificates), send the bundle's test images through the whole\n"+
			"split path, and print the task metrics, the bytes per image and the latency breakdown.")
	dir := bundleFlag(fs)
	asJSON := fs.Bool("json", false, "print one JSON object: top1, map50, miou, bytes_per_image, images, latency_ms {p50, p95, p99}, stages_ms")
	concurrency := fs.Int("concurrency", 4, "requests in flight")
	limit := fs.Int("limit", 0, "send only the first N test images (0: all)")
	eng := engineFlags(fs, models.Native)
	if err := fs.Parse(args); err != nil {
		return err
	}
	b, err := loadBundle(*dir)
	if err != nil {
		return err
	}
	res, err := pipeline.Stream(ctx, b, pipeline.StreamOptions{Engine: *eng, Concurrency: *concurrency, Limit: *limit})
	if err != nil {
		return err
	}
	lat := res.Summary.Latency()
	if *asJSON {
		return json.NewEncoder(os.Stdout).Encode(demoResult{Scores: res.Scores, Latency: lat["total"], Stages: lat})
	}
	res.Scores.WriteVersusRecorded(os.Stdout, b, eng.Kind)
	fmt.Printf("  (each request also carries a %d-byte header)\n\n", wire.HeaderSize)
	res.Summary.Write(os.Stdout)
	fmt.Printf("%d images in %.1f s over QUIC on loopback (%d in flight, %d connection)\n", res.Images, res.Elapsed.Seconds(), *concurrency, res.Connects)
	return nil
}
