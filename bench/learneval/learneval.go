// Package learneval trains and evaluates the edge's local classifier
// (package edge/learn) on a bundle's latents or on its trunk's features,
// with the cloud's classification head run in process as the teacher and
// as the figure to compare with: `splitstream learn train` and
// `splitstream learn eval`. It lives beside the benches, not under edge,
// because it runs the cloud side too, and edge does not import cloud.
package learneval

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/splitstream/splitstream/bundle"
	"github.com/splitstream/splitstream/cloud"
	"github.com/splitstream/splitstream/codec"
	"github.com/splitstream/splitstream/edge"
	"github.com/splitstream/splitstream/edge/learn"
	"github.com/splitstream/splitstream/models"
	"github.com/splitstream/splitstream/wire"
)

// Input names what the local model learns from.
type Input string

// The inputs.
const (
	// Latent is the dequantised latent: what the cloud decodes, and what
	// the edge computes from its own latent (quantise, dequantise) at no
	// extra cost.
	Latent Input = "latent"
	// Trunk is the output of the bundle's trunk graph run on the edge on
	// the dequantised latent: one more graph per frame on the device.
	Trunk Input = "trunk"
)

// Options configure the in-process split path.
type Options struct {
	// Input is what the local model learns from: Latent (default) or Trunk.
	Input Input
	// Engine is "native" (default) or "ort".
	Engine        string
	EngineOptions models.Options
	// Limit, when above 0, takes only the first Limit images of a folder.
	Limit int
	// Learn configures a new local model (Train) and bounds a loaded one
	// (Train, Eval: see learn.Unmarshal).
	Learn learn.Config
}

// Sample is one image as the split path sees it.
type Sample struct {
	// X is the local model's input: the dequantised latent or the trunk's
	// features (Options.Input).
	X []float32
	// Cloud and Score are the cloud classification head's top-1 class and
	// its softmax probability.
	Cloud int
	Score float32
	// Truth is the image's class in the folder's labels.json.
	Truth int
}

// Walk runs the images of a folder in the test-set format (labels.json and
// PNG files, as models/zoo/testset) through the bundle's encoder, its
// learned codec (encode and decode) and the cloud's classification head, in
// order, and calls fn with each.
func Walk(ctx context.Context, b *bundle.Bundle, dir string, o Options, fn func(Sample) error) error {
	if b.Kind != bundle.KindSplit || b.Head(bundle.TaskClassification) == nil {
		return fmt.Errorf("bundle %s: a split bundle with a classification head is needed", b.Name)
	}
	ts, err := bundle.LoadTestSet(dir)
	if err != nil {
		return err
	}
	enc, err := edge.NewEncoder(b, edge.EncoderOptions{Engine: o.Engine, EngineOptions: o.EngineOptions})
	if err != nil {
		return err
	}
	defer enc.Close()
	model, err := cloud.LoadModel(b, cloud.ModelOptions{Engine: o.Engine, EngineOptions: o.EngineOptions, Batch: cloud.BatchOptions{MaxBatch: 1}})
	if err != nil {
		return err
	}
	defer model.Close()
	in, err := openInput(b, o)
	if err != nil {
		return err
	}
	defer in.Close()
	n := len(ts.Images)
	if o.Limit > 0 {
		n = min(n, o.Limit)
	}
	classify := wire.Tasks(0).With(wire.Classify)
	for i := range n {
		if err := ctx.Err(); err != nil {
			return err
		}
		name := ts.Images[i].File
		file, err := os.ReadFile(filepath.Join(ts.Dir, name))
		if err != nil {
			return err
		}
		payload, _, err := enc.Encode(ctx, file)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		y, err := model.Decode(enc.Codec.ID(), payload, b.Shape())
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		out, err := model.Run(ctx, y, classify)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		x, err := in.Run(ctx, y)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		top := out.Results[0].Classes[0]
		if err := fn(Sample{X: x, Cloud: int(top.Label), Score: top.Score, Truth: ts.Images[i].Label}); err != nil {
			return err
		}
	}
	return nil
}

// TrainResult is what Train reports.
type TrainResult struct {
	Images  int `json:"images"`  // offered
	Learned int `json:"learned"` // of which the cloud's score passed the threshold
	// CloudLabelAccuracy is the share of the learned labels that match the
	// folder's ground truth: how good the teacher's labels were.
	CloudLabelAccuracy float64 `json:"cloud_label_accuracy"`
	right              int
}

// teach offers the cloud's answer for s to the learner.
func (r *TrainResult) teach(l *learn.Learner, s Sample) error {
	ok, err := l.LearnCloud(s.X, s.Cloud, s.Score)
	if err != nil {
		return err
	}
	r.Images++
	if ok {
		r.Learned++
		if s.Cloud == s.Truth {
			r.right++
		}
		r.CloudLabelAccuracy = float64(r.right) / float64(r.Learned)
	}
	return nil
}

// Teach offers the cloud's answer for each sample to the learner
// (LearnCloud: learned only when its score passes the threshold).
func Teach(l *learn.Learner, samples []Sample) (TrainResult, error) {
	var r TrainResult
	for _, s := range samples {
		if err := r.teach(l, s); err != nil {
			return r, err
		}
	}
	return r, nil
}

// Train opens the local model in modelDir (or starts one with o.Learn),
// teaches it the cloud head's answers for the images of a folder in the
// test-set format, and saves it back.
func Train(ctx context.Context, b *bundle.Bundle, modelDir, imagesDir string, o Options) (TrainResult, error) {
	head := b.Head(bundle.TaskClassification)
	if head == nil {
		return TrainResult{}, fmt.Errorf("bundle %s has no classification head", b.Name)
	}
	shape, err := InputShape(b, o)
	if err != nil {
		return TrainResult{}, err
	}
	l, err := learn.Open(modelDir, b.ID, shape, head.Labels, o.Learn)
	if err != nil {
		return TrainResult{}, err
	}
	var r TrainResult
	if err := Walk(ctx, b, imagesDir, o, func(s Sample) error { return r.teach(l, s) }); err != nil {
		return r, err
	}
	return r, l.Save(modelDir)
}

// Result is `splitstream learn eval --json`.
type Result struct {
	Top1Local      float64 `json:"top1_local"`
	Top1Cloud      float64 `json:"top1_cloud"`
	SamplesTrained uint64  `json:"samples_trained"`
	// TrainMSPer1000 is the learner's time per 1000 samples learned
	// (feature extraction, steps, replays), as it recorded while training.
	TrainMSPer1000 float64 `json:"train_ms_per_1000"`
	ModelBytes     int64   `json:"model_bytes"` // the model file
	Images         int     `json:"images"`
}

// Tally counts the local model's and the cloud head's right answers.
type Tally struct{ Local, Cloud, Images int }

// Add scores one sample.
func (t *Tally) Add(l *learn.Learner, s Sample) error {
	p, err := l.Predict(s.X)
	if err != nil {
		return err
	}
	t.Images++
	if p.Class == s.Truth {
		t.Local++
	}
	if s.Cloud == s.Truth {
		t.Cloud++
	}
	return nil
}

// Top1 returns the local model's and the cloud head's top-1.
func (t *Tally) Top1() (local, cloud float64) {
	if t.Images == 0 {
		return 0, 0
	}
	return float64(t.Local) / float64(t.Images), float64(t.Cloud) / float64(t.Images)
}

// Eval loads the local model in modelDir (bounded by o.Learn) and scores it
// and the cloud head on the folder testDir in the test-set format.
func Eval(ctx context.Context, b *bundle.Bundle, modelDir, testDir string, o Options) (Result, error) {
	shape, err := InputShape(b, o)
	if err != nil {
		return Result{}, err
	}
	l, err := learn.Load(modelDir, b.ID, shape, o.Learn)
	if err != nil {
		return Result{}, err
	}
	st, err := os.Stat(filepath.Join(modelDir, learn.FileName))
	if err != nil {
		return Result{}, err
	}
	var t Tally
	if err := Walk(ctx, b, testDir, o, func(s Sample) error { return t.Add(l, s) }); err != nil {
		return Result{}, err
	}
	info := l.Info()
	r := Result{SamplesTrained: info.Samples, ModelBytes: st.Size(), Images: t.Images}
	r.Top1Local, r.Top1Cloud = t.Top1()
	r.TrainMSPer1000 = MSPer1000(info.Spent, info.Samples)
	return r, nil
}

// MSPer1000 is d per 1000 of n samples, in milliseconds.
func MSPer1000(d time.Duration, n uint64) float64 {
	if n == 0 {
		return 0
	}
	return d.Seconds() * 1e6 / float64(n)
}

// openInput opens the local model's input that o names.
func openInput(b *bundle.Bundle, o Options) (*edge.LocalInput, error) {
	switch o.Input {
	case "", Latent:
		return edge.OpenLocalInput(b, false, o.Engine, o.EngineOptions)
	case Trunk:
		return edge.OpenLocalInput(b, true, o.Engine, o.EngineOptions)
	}
	return nil, fmt.Errorf("input %q: want %s or %s", o.Input, Latent, Trunk)
}

// InputShape is the shape of the local model's input for a bundle.
func InputShape(b *bundle.Bundle, o Options) (codec.Shape, error) {
	in, err := openInput(b, o)
	if err != nil {
		return codec.Shape{}, err
	}
	defer in.Close()
	return in.Shape(), nil
}
