// Package native is the pure-Go inference engine: it plans an ONNX graph
// once per set of input shapes (shape arithmetic and constant subgraphs
// evaluated, activations fused into the convolutions before them, buffers
// assigned by liveness) and runs the plan with blocked, parallel kernels
// built on its internal/gemm.
//
// A Model is safe for concurrent use: each concurrent Run takes its own
// workspace from the plan's pool (allocated on first need, then reused), so
// runs in parallel cost memory, not correctness. Each workspace has its
// own team of worker goroutines (Threads-1 of them), which spin briefly
// between parallel loops and park when idle; Close stops them.
package native

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/splitstream/splitstream/models/internal/onnx"
)

// Tensor is a dense float32 tensor in row-major (NCHW) order.
type Tensor struct {
	Shape []int
	Data  []float32
}

// Model is an ONNX graph ready to run.
type Model struct {
	graph   *onnx.Graph
	statics map[string]*tensor
	inputs  []onnx.ValueInfo
	opset   int64
	threads int

	mu    sync.Mutex
	plans map[string]*plan
}

// Load prepares a decoded model for running with the given number of
// threads (<= 0: one per CPU). When every declared input dimension but the
// batch is fixed it plans batch 1 right away, so that an unsupported
// operator or attribute is reported here rather than at the first Run.
func Load(m *onnx.Model, threads int) (*Model, error) {
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	opset, ok := m.Opset[""]
	if !ok {
		opset = m.Opset["ai.onnx"]
	}
	if opset == 0 {
		opset = 13
	}
	if opset < 7 {
		return nil, fmt.Errorf("native: opset %d is too old (need 7 or later)", opset)
	}
	g := m.Graph
	mod := &Model{graph: g, statics: map[string]*tensor{}, opset: opset, threads: threads, plans: map[string]*plan{}}
	for _, t := range g.Initializers {
		mod.statics[t.Name] = fromONNX(t)
	}
	for _, in := range g.Inputs {
		if _, init := mod.statics[in.Name]; !init {
			mod.inputs = append(mod.inputs, in)
		}
	}
	for _, n := range g.Nodes {
		_, s := staticOps[n.OpType]
		_, d := dynOps[n.OpType]
		if !s && !d {
			return nil, fmt.Errorf("native: operator %s (node %q) is not supported", n.OpType, n.Name)
		}
	}
	shapes := map[string][]int{}
	for _, in := range mod.inputs {
		if in.ElemType != 0 && in.ElemType != onnx.TypeFloat {
			return nil, fmt.Errorf("native: input %q has type %s; only float inputs are supported", in.Name, onnx.TypeName(in.ElemType))
		}
		if in.Shape == nil {
			return mod, nil
		}
		s := make([]int, len(in.Shape))
		for k, d := range in.Shape {
			switch {
			case d >= 0:
				s[k] = int(d)
			case k == 0:
				s[k] = 1
			default:
				return mod, nil
			}
		}
		shapes[in.Name] = s
	}
	if _, err := mod.plan(shapes); err != nil {
		return nil, err
	}
	return mod, nil
}

// Inputs returns the graph inputs the caller must feed, in order.
func (m *Model) Inputs() []onnx.ValueInfo { return m.inputs }

// Outputs returns the graph outputs, in order.
func (m *Model) Outputs() []onnx.ValueInfo { return m.graph.Outputs }

// plan returns the plan for these input shapes, building it on first use.
func (m *Model) plan(shapes map[string][]int) (*plan, error) {
	var key strings.Builder
	for _, in := range m.inputs {
		for _, d := range shapes[in.Name] {
			key.WriteString(strconv.Itoa(d))
			key.WriteByte(',')
		}
		key.WriteByte(';')
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if p, ok := m.plans[key.String()]; ok {
		return p, nil
	}
	p, err := build(m.graph, m.statics, shapes, m.threads, m.opset)
	if err != nil {
		return nil, fmt.Errorf("native: plan: %w", err)
	}
	if len(m.plans) >= maxPlans {
		// Too many distinct shapes: forget one plan (and its memory).
		for k, old := range m.plans {
			old.retire()
			delete(m.plans, k)
			break
		}
	}
	m.plans[key.String()] = p
	return p, nil
}

// maxPlans bounds the plans (and workspaces) a model keeps, one per
// distinct set of input shapes.
const maxPlans = 16

// Run executes the graph on inputs given in the order of Inputs and returns
// the outputs in the order of Outputs. The returned tensors are freshly
// allocated; all other memory is reused from earlier runs of the same
// shapes. The caller checks shapes against the graph's declarations; Run
// checks only that each input's data matches its shape.
func (m *Model) Run(ctx context.Context, in []Tensor) ([]Tensor, error) {
	return m.run(ctx, in, nil)
}

// Profile accumulates the time each step of a plan takes over runs: a
// step is one operator, or a chain of them fused into one kernel.
type Profile struct {
	// Runs counts the profiled runs.
	Runs int
	// Steps holds one entry per step, in plan order.
	Steps []StepTime
}

// StepTime is one step's total time over a Profile's runs.
type StepTime struct {
	Op   string // operator, or the fused chain's name (GDN)
	Desc string // input and output shapes, kernel variant
	Time time.Duration
	// Best is the step's shortest time in one run: on a machine shared
	// with other work, what the step takes when it has the cores.
	Best time.Duration
}

// RunProfiled is Run that adds each step's wall time to prof. prof must
// be used with one set of input shapes only (one plan).
func (m *Model) RunProfiled(ctx context.Context, in []Tensor, prof *Profile) ([]Tensor, error) {
	return m.run(ctx, in, prof)
}

func (m *Model) run(ctx context.Context, in []Tensor, prof *Profile) ([]Tensor, error) {
	if len(in) != len(m.inputs) {
		return nil, fmt.Errorf("native: %d inputs given, the graph takes %d", len(in), len(m.inputs))
	}
	shapes := make(map[string][]int, len(in))
	for k, t := range in {
		n, err := numel(t.Shape)
		if err != nil {
			return nil, fmt.Errorf("native: input %q: %w", m.inputs[k].Name, err)
		}
		if n != len(t.Data) {
			return nil, fmt.Errorf("native: input %q: shape %v needs %d values, data has %d", m.inputs[k].Name, t.Shape, n, len(t.Data))
		}
		shapes[m.inputs[k].Name] = t.Shape
	}
	p, err := m.plan(shapes)
	if err != nil {
		return nil, err
	}
	ws := p.get()
	defer p.put(ws)
	ws.team.prewake()
	for k, id := range p.inputs {
		copy(ws.bufs[id], in[k].Data)
	}
	if prof != nil && len(prof.Steps) == 0 {
		for _, s := range p.steps {
			prof.Steps = append(prof.Steps, StepTime{Op: s.op, Desc: s.desc})
		}
	}
	if prof != nil && len(prof.Steps) != len(p.steps) {
		return nil, errors.New("native: a profile is for one plan; this run's input shapes plan differently")
	}
	for k, s := range p.steps {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if prof == nil {
			s.run(ws.bufs, ws.scratch, ws.team)
			continue
		}
		start := time.Now()
		s.run(ws.bufs, ws.scratch, ws.team)
		d := time.Since(start)
		st := &prof.Steps[k]
		st.Time += d
		if st.Best == 0 || d < st.Best {
			st.Best = d
		}
	}
	if prof != nil {
		prof.Runs++
	}
	out := make([]Tensor, len(p.outputs))
	for k, v := range p.outputs {
		t := Tensor{Shape: append([]int{}, v.shape...), Data: make([]float32, prod(v.shape))}
		if v.static() {
			copy(t.Data, v.st.floats())
		} else {
			copy(t.Data, ws.bufs[v.id])
		}
		out[k] = t
	}
	return out, nil
}

// Close stops the worker goroutines of the model's idle workspaces. The
// model must not be used afterwards.
func (m *Model) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range m.plans {
		p.retire()
	}
}

func (p *plan) get() *workspace {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.pool); n > 0 {
		ws := p.pool[n-1]
		p.pool = p.pool[:n-1]
		return ws
	}
	return p.newWorkspace()
}

func (p *plan) put(ws *workspace) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.retired {
		ws.team.close()
		return
	}
	p.pool = append(p.pool, ws)
}

// retire releases the plan's idle workspaces; those in use are released
// when their runs return them.
func (p *plan) retire() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.retired = true
	for _, ws := range p.pool {
		ws.team.close()
	}
	p.pool = nil
}
