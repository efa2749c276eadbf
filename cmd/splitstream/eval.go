package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/splitstream/splitstream/cloud"
	"github.com/splitstream/splitstream/codec"
	"github.com/splitstream/splitstream/edge"
	"github.com/splitstream/splitstream/internal/score"
	"github.com/splitstream/splitstream/models"
	"github.com/splitstream/splitstream/models/bundle"
	"github.com/splitstream/splitstream/wire"
)

func init() {
	register(command{name: "eval", summary: "run a bundle's test set through the split path in one process and print its metrics", run: runEval})
}

// engineFlags are the inference engine flags shared by eval, cloud, edge and demo.
type engineFlags struct {
	kind    *string
	threads *int
}

func addEngineFlags(fs *flag.FlagSet) engineFlags {
	return engineFlags{
		kind:    fs.String("engine", models.Native, "inference engine: native (pure Go) or ort (ONNX Runtime; needs cgo and $"+models.ORTLibraryEnv+")"),
		threads: fs.Int("threads", 0, "threads per graph run (0: one per CPU for native, ONNX Runtime's default for ort)"),
	}
}

func (e engineFlags) options() models.Options { return models.Options{Threads: *e.threads} }

// zooDir is where the shipped bundles live, relative to the repository root.
const zooDir = "models/zoo"

// loadBundle loads the bundle in dir or, when dir is empty, the shipped
// split bundle: the first, by name, under models/zoo.
func loadBundle(dir string) (*bundle.Bundle, error) {
	if dir != "" {
		return bundle.Load(dir)
	}
	manifests, _ := filepath.Glob(filepath.Join(zooDir, "*", "manifest.json"))
	slices.Sort(manifests)
	for _, m := range manifests {
		b, err := bundle.Load(filepath.Dir(m))
		if err == nil && b.Kind == bundle.KindSplit {
			return b, nil
		}
	}
	return nil, fmt.Errorf("no split bundle under %s (run from the repository root, or pass --bundle)", zooDir)
}

// evalResult is eval's --json object (demo adds latency_ms).
type evalResult struct {
	Top1          float64 `json:"top1"`
	MAP50         float64 `json:"map50"`
	MIoU          float64 `json:"miou"`
	BytesPerImage float64 `json:"bytes_per_image"`
	Images        int     `json:"images"`
	// Unscored says, per task of the bundle, what the test set lacks to score it.
	Unscored map[string]string `json:"unscored,omitempty"`
}

// scorer scores task results against a bundle's test set.
type scorer struct {
	*score.Scorer
	ts       *bundle.TestSet
	unscored map[string]string
}

// newScorer scores against the test set in dir, or the bundle's own when dir is "".
func newScorer(b *bundle.Bundle, dir string) (*scorer, error) {
	var ts *bundle.TestSet
	var err error
	if dir != "" {
		ts, err = bundle.LoadTestSet(dir)
	} else {
		ts, err = b.TestSet()
	}
	if err != nil {
		return nil, err
	}
	unscored, err := ts.Lacks(b.Manifest)
	if err != nil {
		return nil, err
	}
	if len(unscored) == len(b.Heads) {
		return nil, fmt.Errorf("the test set can score none of bundle %s's tasks: %v", b.Name, unscored)
	}
	return &scorer{score.New(ts, b), ts, unscored}, nil
}

// tasks returns the bundle's tasks that the test set can score.
func (s *scorer) tasks(b *bundle.Bundle) wire.Tasks {
	m := *b.Manifest
	m.Heads = slices.DeleteFunc(slices.Clone(m.Heads), func(h bundle.Head) bool {
		_, skip := s.unscored[h.Task]
		return skip
	})
	return edge.BundleTasks(&bundle.Bundle{Manifest: &m})
}

func (s *scorer) result(bytes int) evalResult {
	sc := s.Scores()
	r := evalResult{Top1: sc.Top1, MAP50: sc.MAP50, MIoU: sc.MIoU, Images: sc.Images, Unscored: s.unscored}
	if sc.Images > 0 {
		r.BytesPerImage = float64(bytes) / float64(sc.Images)
	}
	return r
}

// printMetrics prints the task metrics next to those recorded at export.
func printMetrics(b *bundle.Bundle, r evalResult, engine string) {
	m := b.Metrics
	fmt.Printf("bundle %s (%s), engine %s, %d images\n", b.Name, b.Kind, engine, r.Images)
	fmt.Printf("  %-16s %10s %10s %10s\n", "metric", "measured", "recorded", "diff")
	row := func(name string, got, rec float64, scale float64) {
		fmt.Printf("  %-16s %10.4f %10.4f %+10.4f\n", name, got*scale, rec*scale, (got-rec)*scale)
	}
	for _, t := range []struct {
		task, name   string
		got, rec, sc float64
	}{{bundle.TaskClassification, "top1 (%)", r.Top1, m.Top1, 100}, {bundle.TaskDetection, "mAP@0.5", r.MAP50, m.MAP50, 1}, {bundle.TaskSegmentation, "mIoU", r.MIoU, m.MIoU, 1}} {
		if why, ok := r.Unscored[t.task]; ok {
			fmt.Printf("  %-16s not scored: %s\n", t.name, why)
		} else if b.Head(t.task) != nil {
			row(t.name, t.got, t.rec, t.sc)
		}
	}
	if b.Kind == bundle.KindSplit {
		fmt.Printf("  %-16s %10.1f %10.1f   (JPEG q90 of the input: %.1f)\n", "bytes/image", r.BytesPerImage, m.BytesPerImage, m.JPEGQ90BytesPerImage)
	} else {
		fmt.Printf("  %-16s %10.1f %10s   (JPEG q90 of the input: %.1f)\n", "bytes/image", r.BytesPerImage, "-", m.JPEGQ90BytesPerImage)
	}
}

func runEval(ctx context.Context, args []string) error {
	fs := newFlagSet("eval", "[--bundle DIR] [--testset DIR] [--engine native|ort] [--json]",
		"Run a bundle's test set through the whole split path in one process: preprocessing,\n"+
			"encoder, codec (encode and decode), trunk and heads, post-processing; print top-1,\n"+
			"mAP@0.5, mIoU and mean bytes per image next to the metrics recorded at export.")
	dir := fs.String("bundle", "", "bundle directory (default: the first split bundle under models/zoo)")
	eng := addEngineFlags(fs)
	asJSON := fs.Bool("json", false, "print one JSON object: top1, map50, miou, bytes_per_image, images")
	codecSpec := fs.String("codec", "", "codec to send with instead of the bundle's (raw-f32, int8-zstd for split bundles; png, jpeg[:Q], webp[:Q] for full ones)")
	limit := fs.Int("limit", 0, "evaluate only the first N test images (0: all)")
	testset := fs.String("testset", "", "test set folder (labels.json and images, docs/BUNDLE.md) instead of the bundle's own")
	if err := fs.Parse(args); err != nil {
		return err
	}
	b, err := loadBundle(*dir)
	if err != nil {
		return err
	}
	var c codec.Codec
	if *codecSpec != "" {
		if c, err = codec.Baseline(*codecSpec); err != nil {
			return err
		}
	}
	start := time.Now()
	r, err := evaluate(ctx, b, *testset, *eng.kind, eng.options(), c, *limit)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(os.Stdout).Encode(r)
	}
	printMetrics(b, r, *eng.kind)
	fmt.Printf("  %.1f s (%.1f ms/image)\n", time.Since(start).Seconds(), float64(time.Since(start).Milliseconds())/float64(max(r.Images, 1)))
	return nil
}

// evaluate runs the first limit (0: all) images of a test set (the one in
// testset, or the bundle's own when it is "") through the split path in one
// process: encoder, codec encode and decode, trunk, heads and
// post-processing, and scores the results of the tasks the set can score.
// c overrides the bundle's codec when not nil.
func evaluate(ctx context.Context, b *bundle.Bundle, testset, engine string, opts models.Options, c codec.Codec, limit int) (evalResult, error) {
	enc, err := edge.NewEncoder(b, edge.EncoderOptions{Engine: engine, EngineOptions: opts, Codec: c})
	if err != nil {
		return evalResult{}, err
	}
	defer enc.Close()
	model, err := cloud.LoadModel(b, cloud.ModelOptions{Engine: engine, EngineOptions: opts, Batch: cloud.BatchOptions{MaxBatch: 1}})
	if err != nil {
		return evalResult{}, err
	}
	defer model.Close()
	sc, err := newScorer(b, testset)
	if err != nil {
		return evalResult{}, err
	}
	n := len(sc.ts.Images)
	if limit > 0 {
		n = min(n, limit)
	}
	want := sc.tasks(b)
	total := 0
	for i := range n {
		if err := ctx.Err(); err != nil {
			return evalResult{}, err
		}
		name := sc.ts.Images[i].File
		file, err := os.ReadFile(filepath.Join(sc.ts.Dir, name))
		if err != nil {
			return evalResult{}, err
		}
		payload, _, err := enc.Encode(ctx, file)
		if err != nil {
			return evalResult{}, fmt.Errorf("%s: %w", name, err)
		}
		total += len(payload)
		x, err := model.Decode(enc.Codec.ID(), payload, b.Shape())
		if err != nil {
			return evalResult{}, fmt.Errorf("%s: %w", name, err)
		}
		out, err := model.Run(ctx, x, want)
		if err != nil {
			return evalResult{}, fmt.Errorf("%s: %w", name, err)
		}
		if err := sc.Add(i, out.Results, out.Detections); err != nil {
			return evalResult{}, err
		}
	}
	return sc.result(total), nil
}
