package edge

import (
	"context"
	"fmt"
	"sync"

	"github.com/splitstream/splitstream/bundle"
	"github.com/splitstream/splitstream/codec"
	"github.com/splitstream/splitstream/edge/learn"
	"github.com/splitstream/splitstream/models"
)

// LocalInput turns a frame's dequantised latent into the local model's
// input: the latent itself, or the features of the bundle's trunk graph
// run on the device (one more graph per frame; docs/EDGE2TRAIN.md measures
// both).
type LocalInput struct {
	b     *bundle.Bundle
	trunk models.Engine // nil: the latent itself
	shape codec.Shape   // of what Run returns
}

// OpenLocalInput opens the input: trunk false for the latent, true for the
// trunk's features (the bundle needs a trunk graph).
func OpenLocalInput(b *bundle.Bundle, trunk bool, engine string, opts models.Options) (*LocalInput, error) {
	in := &LocalInput{b: b, shape: b.Shape()}
	if !trunk {
		return in, nil
	}
	if b.Cloud.Layout != "trunk" || b.Cloud.Trunk == nil {
		return nil, fmt.Errorf("bundle %s has no trunk graph", b.Name)
	}
	eng, err := models.OpenFile(engine, b.Path(b.Cloud.Trunk.File), opts)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: trunk: %w", b.Name, err)
	}
	in.trunk = eng
	// The trunk's output shape is not in the manifest: run it once.
	out, err := in.runTrunk(context.Background(), make([]float32, in.shape.Len()))
	if err != nil {
		eng.Close()
		return nil, err
	}
	if len(out.Shape) != 4 || out.Shape[0] != 1 {
		eng.Close()
		return nil, fmt.Errorf("bundle %s: trunk output of shape %v, want 1 x C x H x W", b.Name, out.Shape)
	}
	in.shape = codec.Shape{C: out.Shape[1], H: out.Shape[2], W: out.Shape[3]}
	return in, nil
}

func (in *LocalInput) runTrunk(ctx context.Context, y []float32) (models.Tensor, error) {
	s := in.b.Shape()
	out, err := in.trunk.Run(ctx, map[string]models.Tensor{in.b.Cloud.Trunk.Input: {Shape: []int{1, s.C, s.H, s.W}, Data: y}})
	if err != nil {
		return models.Tensor{}, fmt.Errorf("bundle %s: trunk: %w", in.b.Name, err)
	}
	return out[in.b.Cloud.Trunk.Output], nil
}

// Shape is the shape of what Run returns.
func (in *LocalInput) Shape() codec.Shape { return in.shape }

// Run turns dequantised latent y into the local model's input.
func (in *LocalInput) Run(ctx context.Context, y []float32) ([]float32, error) {
	if in.trunk == nil {
		return y, nil
	}
	f, err := in.runTrunk(ctx, y)
	if err != nil {
		return nil, err
	}
	if len(f.Data) != in.shape.Len() {
		return nil, fmt.Errorf("trunk output of %d values, want %v", len(f.Data), in.shape)
	}
	return f.Data, nil
}

// Close releases the trunk graph.
func (in *LocalInput) Close() error {
	if in.trunk != nil {
		return in.trunk.Close()
	}
	return nil
}

// LocalOptions configure a Local.
type LocalOptions struct {
	// Dir keeps the model and its replay buffer (learn.Open, Save).
	Dir string
	// Trunk learns from the trunk's features instead of the latent.
	Trunk         bool
	Engine        string
	EngineOptions models.Options
	Learn         learn.Config
	// Labels are classes a user gave to images (--labels FILE); a frame
	// with one learns it instead of the cloud's answer.
	Labels learn.UserLabels
	// SaveEvery saves the model after this many learned samples (default
	// 100); Close saves it too.
	SaveEvery int
}

// Local is the edge's on-device classifier (Edge2Train, package
// edge/learn) with its input: it learns from the cloud's classification
// replies and answers classification when the cloud cannot. It is safe for
// concurrent use.
type Local struct {
	in      *LocalInput
	codec   codec.Codec // dequantises a payload
	o       LocalOptions
	mu      sync.Mutex
	l       *learn.Learner
	unsaved int
}

// OpenLocal opens (or starts) the local model of split bundle b in o.Dir;
// a model of another bundle is refused.
func OpenLocal(b *bundle.Bundle, o LocalOptions) (*Local, error) {
	h := b.Head(bundle.TaskClassification)
	if b.Kind != bundle.KindSplit || h == nil {
		return nil, fmt.Errorf("bundle %s: local learning needs a split bundle with a classification head", b.Name)
	}
	if o.SaveEvery <= 0 {
		o.SaveEvery = 100
	}
	c, err := b.DefaultCodec()
	if err != nil {
		return nil, err
	}
	in, err := OpenLocalInput(b, o.Trunk, o.Engine, o.EngineOptions)
	if err != nil {
		return nil, err
	}
	l, err := learn.Open(o.Dir, b.ID, in.Shape(), h.Labels, o.Learn)
	if err != nil {
		in.Close()
		return nil, err
	}
	return &Local{in: in, codec: c, o: o, l: l}, nil
}

// features dequantises a learned-codec payload and runs the input on it.
func (lo *Local) features(ctx context.Context, payload []byte, s codec.Shape) ([]float32, error) {
	y, err := lo.codec.Decode(nil, payload, s)
	if err != nil {
		return nil, err
	}
	return lo.in.Run(ctx, y)
}

// Learn learns a frame's class: the one the user gave to the image (name)
// if any, else the cloud's top-1 answer when its score passes the learner's
// threshold (no answer: top1 < 0). It saves the model every SaveEvery
// samples.
func (lo *Local) Learn(ctx context.Context, name string, payload []byte, s codec.Shape, top1 int, score float32) error {
	user, hasUser := lo.o.Labels.Lookup(name)
	if !hasUser && top1 < 0 {
		return nil
	}
	x, err := lo.features(ctx, payload, s)
	if err != nil {
		return err
	}
	lo.mu.Lock()
	defer lo.mu.Unlock()
	ok := true
	if hasUser {
		err = lo.l.LearnLabel(x, user)
	} else {
		ok, err = lo.l.LearnCloud(x, top1, score)
	}
	if err != nil || !ok {
		return err
	}
	if lo.unsaved++; lo.unsaved >= lo.o.SaveEvery {
		lo.unsaved = 0
		return lo.l.Save(lo.o.Dir)
	}
	return nil
}

// Predict classifies a frame locally.
func (lo *Local) Predict(ctx context.Context, payload []byte, s codec.Shape) (learn.Prediction, error) {
	x, err := lo.features(ctx, payload, s)
	if err != nil {
		return learn.Prediction{}, err
	}
	lo.mu.Lock()
	defer lo.mu.Unlock()
	return lo.l.Predict(x)
}

// Info describes the local model.
func (lo *Local) Info() learn.Info {
	lo.mu.Lock()
	defer lo.mu.Unlock()
	return lo.l.Info()
}

// Close saves the model and releases the input.
func (lo *Local) Close() error {
	lo.mu.Lock()
	err := lo.l.Save(lo.o.Dir)
	lo.mu.Unlock()
	if cerr := lo.in.Close(); err == nil {
		err = cerr
	}
	return err
}
