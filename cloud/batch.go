package cloud

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/splitstream/splitstream/models"
	"github.com/splitstream/splitstream/wire"
)

// BatchOptions configure dynamic batching of one graph.
type BatchOptions struct {
	// MaxBatch is the most requests one run of a graph takes. 0 means
	// DefaultMaxBatch (1: batching off); graphs whose batch dimension is
	// fixed always run one request at a time. BenchmarkBatching measured no
	// gain from batching on CPU (2 cores, one thread per run), so it is off
	// by default; it is meant for GPU execution providers.
	MaxBatch int
	// Wait is how long a batch that is not full waits for more requests
	// once a slot is free to run it. 0 means none: a batch holds the
	// requests that queued while every slot was busy, so batching costs no
	// latency under light load.
	Wait time.Duration
	// Parallel is how many batches of one graph may run at once. 0 means 1
	// per CPU.
	Parallel int
}

// Batching defaults.
const (
	DefaultMaxBatch = 1
)

// stage is one graph of a bundle's cloud side (the trunk or a head) with
// its batcher.
type stage struct {
	name    wire.Stage // wire.StageTrunk or wire.HeadStage(task)
	eng     models.Engine
	input   string   // the graph's input name
	outputs []string // the outputs the stage hands on, in manifest order

	maxBatch int
	wait     time.Duration
	calls    chan *call
	slots    chan struct{}
	quit     chan struct{}
	wg       sync.WaitGroup
	observe  func(stage wire.Stage, n int) // batch sizes, for metrics; may be nil
}

// call is one request's input waiting for a batch.
type call struct {
	ctx   context.Context
	shape []int // without the batch dimension
	x     []float32
	done  chan callResult
}

type callResult struct {
	out map[string]models.Tensor
	err error
}

func newStage(name wire.Stage, eng models.Engine, outputs []string, o BatchOptions, parallel int) (*stage, error) {
	ins := eng.Inputs()
	if len(ins) != 1 {
		return nil, fmt.Errorf("%s: graph takes %d inputs, want 1", name, len(ins))
	}
	declared := eng.Outputs()
	for _, o := range outputs {
		if !slices.ContainsFunc(declared, func(t models.TensorInfo) bool { return t.Name == o }) {
			return nil, fmt.Errorf("%s: graph has no output %q", name, o)
		}
	}
	s := &stage{name: name, eng: eng, input: ins[0].Name, outputs: outputs, maxBatch: o.MaxBatch, wait: o.Wait}
	if s.maxBatch == 0 {
		s.maxBatch = DefaultMaxBatch
	}
	if sh := ins[0].Shape; len(sh) > 0 && sh[0] >= 0 {
		s.maxBatch = 1 // fixed batch dimension
	}
	if s.maxBatch > 1 {
		s.calls = make(chan *call)
		s.slots = make(chan struct{}, max(parallel, 1))
		s.quit = make(chan struct{})
		s.wg.Add(1)
		go s.loop()
	}
	return s, nil
}

// run runs the stage on one request's input of the given shape (without
// the batch dimension) and returns its outputs, each with batch dimension 1.
func (s *stage) run(ctx context.Context, x []float32, shape []int) (map[string]models.Tensor, error) {
	if s.calls == nil {
		if s.observe != nil {
			s.observe(s.name, 1)
		}
		return s.eng.Run(ctx, map[string]models.Tensor{s.input: {Shape: append([]int{1}, shape...), Data: x}})
	}
	c := &call{ctx: ctx, shape: shape, x: x, done: make(chan callResult, 1)}
	select {
	case s.calls <- c:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.quit:
		return nil, fmt.Errorf("%s: closed", s.name)
	}
	select {
	case r := <-c.done:
		return r.out, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// loop gathers calls into batches. It takes a call, waits for one of the
// parallel slots, then adds the calls that arrived meanwhile (up to
// maxBatch), and, if wait is positive and the batch is not full, waits up to
// that long for more. So under light load a call runs at once, and under
// load (all slots busy) batches form from the calls that queue up.
func (s *stage) loop() {
	defer s.wg.Done()
	for {
		var batch []*call
		select {
		case c := <-s.calls:
			batch = append(batch, c)
		case <-s.quit:
			return
		}
		s.slots <- struct{}{}
	drain:
		for len(batch) < s.maxBatch {
			select {
			case c := <-s.calls:
				batch = append(batch, c)
			default:
				break drain
			}
		}
		if s.wait > 0 && len(batch) < s.maxBatch {
			timer := time.NewTimer(s.wait)
		gather:
			for len(batch) < s.maxBatch {
				select {
				case c := <-s.calls:
					batch = append(batch, c)
				case <-timer.C:
					break gather
				}
			}
			timer.Stop()
		}
		s.wg.Add(1)
		go func() {
			defer func() { <-s.slots; s.wg.Done() }()
			s.runBatch(batch)
		}()
	}
}

func (s *stage) runBatch(batch []*call) {
	// Drop calls whose requests gave up while waiting, and split off any
	// whose shape differs from the first (a batch needs one shape).
	live := batch[:0]
	for _, c := range batch {
		if c.ctx.Err() != nil {
			c.done <- callResult{err: c.ctx.Err()}
			continue
		}
		if !slices.Equal(c.shape, batch[0].shape) {
			out, err := s.eng.Run(c.ctx, map[string]models.Tensor{s.input: {Shape: append([]int{1}, c.shape...), Data: c.x}})
			c.done <- callResult{out, err}
			continue
		}
		live = append(live, c)
	}
	if len(live) == 0 {
		return
	}
	if s.observe != nil {
		s.observe(s.name, len(live))
	}
	n := len(live[0].x)
	data := make([]float32, 0, n*len(live))
	for _, c := range live {
		data = append(data, c.x...)
	}
	// The batch runs to completion even if one request gives up: the others
	// need it.
	out, err := s.eng.Run(context.WithoutCancel(live[0].ctx), map[string]models.Tensor{
		s.input: {Shape: append([]int{len(live)}, live[0].shape...), Data: data},
	})
	if err != nil {
		for _, c := range live {
			c.done <- callResult{err: err}
		}
		return
	}
	for i, c := range live {
		res := make(map[string]models.Tensor, len(out))
		for name, t := range out {
			if len(t.Shape) == 0 || t.Shape[0] != len(live) {
				c.done <- callResult{err: fmt.Errorf("%s: output %q of shape %v has no batch dimension %d", s.name, name, t.Shape, len(live))}
				res = nil
				break
			}
			per := len(t.Data) / len(live)
			res[name] = models.Tensor{Shape: append([]int{1}, t.Shape[1:]...), Data: t.Data[i*per : (i+1)*per]}
		}
		if res != nil {
			c.done <- callResult{out: res}
		}
	}
}

func (s *stage) close() error {
	if s.quit != nil {
		close(s.quit)
		s.wg.Wait()
	}
	return s.eng.Close()
}

// maxBatch is the largest batch any graph of the model takes (1 when
// batching is off).
func (m *Model) maxBatch() int {
	n := 1
	if m.trunk != nil {
		n = max(n, m.trunk.maxBatch)
	}
	for _, h := range m.heads {
		n = max(n, h.maxBatch)
	}
	return n
}

// maxBatch is the largest batch of any model the server serves: the server
// runs Workers x maxBatch requests at once, so that requests waiting in the
// queue reach the batchers and batches form (with one request per worker,
// a batcher only ever sees what the workers hold).
func (s *Server) maxBatch() int {
	n := 1
	for _, m := range s.models {
		n = max(n, m.maxBatch())
	}
	return n
}
