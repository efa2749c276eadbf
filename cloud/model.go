package cloud

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/splitstream/splitstream/bundle"
	"github.com/splitstream/splitstream/codec"
	"github.com/splitstream/splitstream/models"
	"github.com/splitstream/splitstream/tasks"
	"github.com/splitstream/splitstream/wire"
)

// ModelOptions configure how a bundle's cloud side is loaded.
type ModelOptions struct {
	// Engine is "native" (default) or "ort".
	Engine string
	// EngineOptions are passed to models.Open (threads, ONNX Runtime library).
	EngineOptions models.Options
	// Batch configures dynamic batching of each graph.
	Batch BatchOptions
	// Open opens a graph file of the bundle. Nil means
	// models.OpenFile(Engine, path, EngineOptions); tests supply their own.
	Open func(path string) (models.Engine, error)
}

// Model is the cloud side of one bundle: its codecs, its trunk (if any) and
// its heads, ready to run requests. It is safe for concurrent use.
type Model struct {
	Bundle *bundle.Bundle
	codecs map[codec.ID]codec.Codec
	trunk  *stage
	heads  map[wire.Task]*headStage
	engine string // the engine kind the graphs got (models.KindOf)
}

type headStage struct {
	*stage
	head *bundle.Head
}

// LoadModel opens the engines of a bundle's cloud side.
func LoadModel(b *bundle.Bundle, o ModelOptions) (*Model, error) {
	m := &Model{Bundle: b, codecs: map[codec.ID]codec.Codec{}, heads: map[wire.Task]*headStage{}}
	for _, id := range b.Codecs() {
		c, err := b.NewCodec(id)
		if err != nil {
			return nil, err
		}
		m.codecs[id] = c
	}
	parallel := o.Batch.Parallel
	if parallel <= 0 {
		parallel = runtime.GOMAXPROCS(0)
	}
	openFile := o.Open
	if openFile == nil {
		openFile = func(path string) (models.Engine, error) { return models.OpenFile(o.Engine, path, o.EngineOptions) }
	}
	open := func(name wire.Stage, file string, outputs []string) (*stage, error) {
		eng, err := openFile(b.Path(file))
		if err != nil {
			return nil, fmt.Errorf("bundle %s: %s: %w", b.Name, name, err)
		}
		m.engine = models.KindOf(eng)
		s, err := newStage(name, eng, outputs, o.Batch, parallel)
		if err != nil {
			eng.Close()
			return nil, fmt.Errorf("bundle %s: %w", b.Name, err)
		}
		return s, nil
	}
	if b.Cloud.Layout == "trunk" {
		t, err := open(wire.StageTrunk, b.Cloud.Trunk.File, []string{b.Cloud.Trunk.Output})
		if err != nil {
			return nil, err
		}
		m.trunk = t
	}
	for i := range b.Heads {
		h := &b.Heads[i]
		task, _ := bundle.WireTask(h.Task) // the manifest was validated
		s, err := open(wire.HeadStage(task), h.File, h.Outputs)
		if err != nil {
			m.Close()
			return nil, err
		}
		m.heads[task] = &headStage{stage: s, head: h}
	}
	return m, nil
}

// Close releases the engines.
func (m *Model) Close() error {
	var errs []error
	if m.trunk != nil {
		errs = append(errs, m.trunk.close())
	}
	for _, h := range m.heads {
		errs = append(errs, h.close())
	}
	return errors.Join(errs...)
}

// Engine is the kind of engine that runs the graphs: what --engine auto
// chose.
func (m *Model) Engine() string { return m.engine }

// Tasks is the set of tasks the bundle has heads for.
func (m *Model) Tasks() wire.Tasks {
	var s wire.Tasks
	for t := range m.heads {
		s = s.With(t)
	}
	return s
}

// setObserver makes every stage report its batch sizes to f.
func (m *Model) setObserver(f func(stage wire.Stage, n int)) {
	if m.trunk != nil {
		m.trunk.observe = f
	}
	for _, h := range m.heads {
		h.observe = f
	}
}

// Accept checks a request against the bundle before it is queued: the
// codec must carry the bundle's tensor, of the bundle's shape, and the
// bundle must have a head for every task.
func (m *Model) Accept(id codec.ID, s codec.Shape, want wire.Tasks) error {
	if m.codecs[id] == nil {
		return m.Bundle.CheckCodec(id)
	}
	if want := m.Bundle.Shape(); s != want {
		return fmt.Errorf("shape %v, bundle %s takes %v", s, m.Bundle.Name, want)
	}
	if missing := want &^ m.Tasks(); missing != 0 {
		return fmt.Errorf("bundle %s has no head for %v", m.Bundle.Name, missing.List())
	}
	return nil
}

// Decode decodes a payload coded with codec id into the tensor the cloud
// side takes (the latent, or the image's pixel values). An error wraps
// codec.ErrCorrupt for a payload that does not decode.
func (m *Model) Decode(id codec.ID, payload []byte, s codec.Shape) ([]float32, error) {
	if err := m.Accept(id, s, 0); err != nil {
		return nil, err
	}
	return m.codecs[id].Decode(nil, payload, s)
}

// Output is what Run returns.
type Output struct {
	Results []wire.Result
	Timings []wire.Timing // trunk, head:<task> in task order, post
	// Detections are the detection results at full (float64) precision,
	// as the metrics use them; nil without a detection task.
	Detections []tasks.Detection
}

// Run runs the requested tasks on one decoded tensor (a latent, or pixel
// values for a full bundle) and post-processes their outputs. Heads run
// concurrently; each may wait for a batch.
func (m *Model) Run(ctx context.Context, x []float32, want wire.Tasks) (*Output, error) {
	b := m.Bundle
	out := &Output{}
	shape := []int{b.Shape().C, b.Shape().H, b.Shape().W}
	if b.Kind == bundle.KindFull {
		norm := append([]float32(nil), x...)
		if err := b.Input.Normalize(norm); err != nil {
			return nil, err
		}
		x = norm
	}
	if m.trunk != nil {
		start := time.Now()
		r, err := m.trunk.run(ctx, x, shape)
		if err != nil {
			return nil, fmt.Errorf("trunk: %w", err)
		}
		f := r[m.trunk.outputs[0]]
		x, shape = f.Data, f.Shape[1:]
		out.Timings = append(out.Timings, wire.Timing{Stage: wire.StageTrunk, Duration: time.Since(start)})
	}
	list := want.List()
	raw := make([]map[string]models.Tensor, len(list))
	errs := make([]error, len(list))
	took := make([]time.Duration, len(list))
	var wg sync.WaitGroup
	for i, t := range list {
		h := m.heads[t]
		if h == nil {
			return nil, fmt.Errorf("bundle %s has no head for %v", b.Name, t)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			raw[i], errs[i] = h.run(ctx, x, shape)
			took[i] = time.Since(start)
		}()
	}
	wg.Wait()
	for i, t := range list {
		if errs[i] != nil {
			return nil, fmt.Errorf("%s: %w", m.heads[t].name, errs[i])
		}
		out.Timings = append(out.Timings, wire.Timing{Stage: m.heads[t].name, Duration: took[i]})
	}
	start := time.Now()
	for i, t := range list {
		res, dets, err := m.heads[t].post(raw[i])
		if err != nil {
			return nil, fmt.Errorf("post-process %v: %w", t, err)
		}
		out.Results = append(out.Results, res)
		if t == wire.Detect {
			out.Detections = dets
		}
	}
	out.Timings = append(out.Timings, wire.Timing{Stage: wire.StagePost, Duration: time.Since(start)})
	return out, nil
}

// post turns one request's raw head outputs (batch dimension 1) into its result.
func (h *headStage) post(raw map[string]models.Tensor) (wire.Result, []tasks.Detection, error) {
	get := func(i int, rank int) (models.Tensor, error) {
		t, ok := raw[h.head.Outputs[i]]
		if !ok {
			return t, fmt.Errorf("missing output %q", h.head.Outputs[i])
		}
		if len(t.Shape) != rank || t.Shape[0] != 1 {
			return t, fmt.Errorf("output %q has shape %v, want rank %d with batch 1", h.head.Outputs[i], t.Shape, rank)
		}
		return t, nil
	}
	switch h.head.Task {
	case bundle.TaskClassification:
		logits, err := get(0, 2)
		if err != nil {
			return wire.Result{}, nil, err
		}
		return wire.Result{Task: wire.Classify, Classes: tasks.TopK(logits.Data, h.head.TopK)}, nil, nil
	case bundle.TaskDetection:
		heat, err := get(0, 4)
		if err != nil {
			return wire.Result{}, nil, err
		}
		size, err := get(1, 4)
		if err != nil {
			return wire.Result{}, nil, err
		}
		off, err := get(2, 4)
		if err != nil {
			return wire.Result{}, nil, err
		}
		dets, err := tasks.CenterNet(heat.Data, size.Data, off.Data, heat.Shape[1], heat.Shape[2], heat.Shape[3], *h.head.Detect)
		if err != nil {
			return wire.Result{}, nil, err
		}
		return wire.Result{Task: wire.Detect, Boxes: tasks.Boxes(dets)}, dets, nil
	default:
		logits, err := get(0, 4)
		if err != nil {
			return wire.Result{}, nil, err
		}
		px, err := tasks.MaskArgmax(logits.Data, logits.Shape[1], logits.Shape[2], logits.Shape[3])
		if err != nil {
			return wire.Result{}, nil, err
		}
		mask, err := wire.EncodeMask(px, logits.Shape[3], logits.Shape[2])
		if err != nil {
			return wire.Result{}, nil, err
		}
		return wire.Result{Task: wire.Segment, Mask: mask}, nil, nil
	}
}

// LoadModels loads the cloud side of every bundle directory; on an error it
// closes those it loaded.
func LoadModels(dirs []string, o ModelOptions) ([]*Model, error) {
	var ms []*Model
	for _, d := range dirs {
		b, err := bundle.Load(d)
		if err == nil {
			var m *Model
			if m, err = LoadModel(b, o); err == nil {
				ms = append(ms, m)
				continue
			}
		}
		for _, m := range ms {
			m.Close()
		}
		return nil, err
	}
	return ms, nil
}
