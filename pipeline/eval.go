// Package pipeline runs the whole split path inside one process: in process
// without a network (Evaluate: preprocess, encoder, codec encode and decode,
// trunk, heads, post-processing, scoring) and as a real cloud server and edge
// agent over QUIC on loopback (Serve, Loopback, Stream). eval, demo,
// bench/sweep and the end-to-end tests share it, so they all measure the same
// path the same way.
package pipeline

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/splitstream/splitstream/bundle"
	"github.com/splitstream/splitstream/cloud"
	"github.com/splitstream/splitstream/codec"
	"github.com/splitstream/splitstream/edge"
	"github.com/splitstream/splitstream/models"
	"github.com/splitstream/splitstream/tasks/score"
	"github.com/splitstream/splitstream/wire"
)

// Engine says which inference engine runs a bundle's graphs and how.
type Engine struct {
	// Kind is models.Native (the default) or models.ORT.
	Kind    string
	Options models.Options
}

// Scores are a run's task metrics on a test set and the mean payload bytes
// per image (the request header not counted, as the manifest counts).
type Scores struct {
	Top1          float64 `json:"top1"`
	MAP50         float64 `json:"map50"`
	MIoU          float64 `json:"miou"`
	BytesPerImage float64 `json:"bytes_per_image"`
	Images        int     `json:"images"`
	// Unscored says, per manifest task of the bundle, what the test set
	// lacks to score it; those tasks are not run.
	Unscored map[string]string `json:"unscored,omitempty"`
}

// Scorer scores replies to a test set's images and counts payload bytes.
type Scorer struct {
	*score.Scorer
	TestSet  *bundle.TestSet
	bytes    int
	unscored map[string]string
	tasks    wire.Tasks
}

// NewScorer scores the heads of bundle b on test set ts; nil ts means the
// bundle's own test set. A set that lacks the ground truth of a task (no
// masks, say) scores the others; one that can score none, or whose labels
// differ from a head's, is an error.
func NewScorer(b *bundle.Bundle, ts *bundle.TestSet) (*Scorer, error) {
	if ts == nil {
		var err error
		if ts, err = b.TestSet(); err != nil {
			return nil, err
		}
	}
	unscored, err := ts.Lacks(b.Manifest)
	if err != nil {
		return nil, err
	}
	if len(unscored) == len(b.Heads) {
		return nil, fmt.Errorf("the test set can score none of bundle %s's tasks: %v", b.Name, unscored)
	}
	tasks := b.Tasks()
	for task := range unscored {
		t, _ := bundle.WireTask(task)
		tasks &^= wire.Tasks(0).With(t)
	}
	return &Scorer{Scorer: score.New(ts, b), TestSet: ts, unscored: unscored, tasks: tasks}, nil
}

// Tasks are the bundle's tasks that the test set can score: those to run.
func (s *Scorer) Tasks() wire.Tasks { return s.tasks }

// AddBytes counts payload bytes sent for the images scored.
func (s *Scorer) AddBytes(n int) { s.bytes += n }

// Result returns the scores so far.
func (s *Scorer) Result() Scores {
	sc := s.Scores()
	r := Scores{Top1: sc.Top1, MAP50: sc.MAP50, MIoU: sc.MIoU, Images: sc.Images, Unscored: s.unscored}
	if sc.Images > 0 {
		r.BytesPerImage = float64(s.bytes) / float64(sc.Images)
	}
	return r
}

// Paths returns the files of the first limit (0: all) images of the test set.
func (s *Scorer) Paths(limit int) []string {
	n := len(s.TestSet.Images)
	if limit > 0 {
		n = min(n, limit)
	}
	paths := make([]string, n)
	for i := range n {
		paths[i] = filepath.Join(s.TestSet.Dir, s.TestSet.Images[i].File)
	}
	return paths
}

// EvalOptions configure Evaluate. The zero value evaluates the whole test
// set of the bundle with the native engine and the bundle's codec.
type EvalOptions struct {
	Engine Engine
	// Codec overrides the bundle's codec when not nil.
	Codec codec.Codec
	// Limit evaluates only the first Limit test images (0: all).
	Limit int
	// TestSet is the test set to evaluate on; nil means the one in
	// TestSetDir, or the bundle's own when that is empty too.
	TestSet    *bundle.TestSet
	TestSetDir string
}

// Evaluate runs test images through the split path in one process and
// scores the results.
func Evaluate(ctx context.Context, b *bundle.Bundle, o EvalOptions) (Scores, error) {
	enc, err := edge.NewEncoder(b, edge.EncoderOptions{Engine: o.Engine.Kind, EngineOptions: o.Engine.Options, Codec: o.Codec})
	if err != nil {
		return Scores{}, err
	}
	defer enc.Close()
	model, err := cloud.LoadModel(b, cloud.ModelOptions{Engine: o.Engine.Kind, EngineOptions: o.Engine.Options, Batch: cloud.BatchOptions{MaxBatch: 1}})
	if err != nil {
		return Scores{}, err
	}
	defer model.Close()
	if o.TestSet == nil && o.TestSetDir != "" {
		if o.TestSet, err = bundle.LoadTestSet(o.TestSetDir); err != nil {
			return Scores{}, err
		}
	}
	sc, err := NewScorer(b, o.TestSet)
	if err != nil {
		return Scores{}, err
	}
	want := sc.Tasks()
	for i, path := range sc.Paths(o.Limit) {
		if err := ctx.Err(); err != nil {
			return Scores{}, err
		}
		file, err := os.ReadFile(path)
		if err != nil {
			return Scores{}, err
		}
		payload, _, err := enc.Encode(ctx, file)
		if err != nil {
			return Scores{}, fmt.Errorf("%s: %w", path, err)
		}
		sc.AddBytes(len(payload))
		x, err := model.Decode(enc.Codec.ID(), payload, b.Shape())
		if err != nil {
			return Scores{}, fmt.Errorf("%s: %w", path, err)
		}
		out, err := model.Run(ctx, x, want)
		if err != nil {
			return Scores{}, fmt.Errorf("%s: %w", path, err)
		}
		if err := sc.Add(i, out.Results, out.Detections); err != nil {
			return Scores{}, err
		}
	}
	return sc.Result(), nil
}

// WriteVersusRecorded writes the scores as a table next to the metrics
// recorded in b's manifest at export, measured with the named engine.
func (r Scores) WriteVersusRecorded(w io.Writer, b *bundle.Bundle, engine string) {
	m := b.Metrics
	fmt.Fprintf(w, "bundle %s (%s), engine %s, %d images\n", b.Name, b.Kind, engine, r.Images)
	fmt.Fprintf(w, "  %-16s %10s %10s %10s\n", "metric", "measured", "recorded", "diff")
	row := func(name string, got, rec float64, scale float64) {
		fmt.Fprintf(w, "  %-16s %10.4f %10.4f %+10.4f\n", name, got*scale, rec*scale, (got-rec)*scale)
	}
	for _, t := range []struct {
		task, name   string
		got, rec, sc float64
	}{{bundle.TaskClassification, "top1 (%)", r.Top1, m.Top1, 100}, {bundle.TaskDetection, "mAP@0.5", r.MAP50, m.MAP50, 1}, {bundle.TaskSegmentation, "mIoU", r.MIoU, m.MIoU, 1}} {
		if why, ok := r.Unscored[t.task]; ok {
			fmt.Fprintf(w, "  %-16s not scored: %s\n", t.name, why)
		} else if b.Head(t.task) != nil {
			row(t.name, t.got, t.rec, t.sc)
		}
	}
	recorded := "-"
	if b.Kind == bundle.KindSplit {
		recorded = fmt.Sprintf("%.1f", m.BytesPerImage)
	}
	fmt.Fprintf(w, "  %-16s %10.1f %10s   (JPEG q90 of the input: %.1f)\n", "bytes/image", r.BytesPerImage, recorded, m.JPEGQ90BytesPerImage)
}
