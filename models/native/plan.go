package native

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/splitstream/splitstream/models/internal/onnx"
)

// value is a graph value while a plan is built: either static (its data is
// known now) or dynamic (a float32 buffer filled at run time, named by id).
type value struct {
	shape []int
	st    *tensor
	id    int
}

func (v *value) static() bool { return v.st != nil }

// kernel runs one step. bufs holds every dynamic value's buffer by id;
// scratch is working memory of the size the step asked for.
type kernel func(bufs [][]float32, scratch []float32, tm *team)

type step struct {
	op      string
	desc    string // shapes and the kernel's variant, for profiles
	run     kernel
	in, out []int // dynamic value ids read and written
}

// builder turns a graph into a plan for one set of input shapes.
type builder struct {
	threads int
	vals    map[string]*value
	sizes   []int // element count by value id
	base    []int // value id -> id whose buffer it shares (itself if none)
	steps   []step
	scratch int
	// fusable marks dynamic values (by id) whose producing step can apply
	// an activation in place; uses counts the readers of each value name.
	fusable map[int]*fusable
	uses    map[string]int
}

func (b *builder) newDyn(shape []int) (*value, error) {
	n, err := numel(shape)
	if err != nil {
		return nil, err
	}
	id := len(b.sizes)
	b.sizes = append(b.sizes, n)
	b.base = append(b.base, id)
	return &value{shape: shape, id: id}, nil
}

// alias returns a dynamic value that shares v's buffer under a new shape.
func (b *builder) alias(v *value, shape []int) *value {
	id := len(b.sizes)
	b.sizes = append(b.sizes, prod(shape))
	b.base = append(b.base, b.base[v.id])
	return &value{shape: shape, id: id}
}

func (b *builder) add(op string, in []*value, out []*value, scratch int, run kernel) {
	s := step{op: op, run: run}
	for _, v := range in {
		if v != nil && !v.static() {
			s.in = append(s.in, v.id)
		}
	}
	for _, v := range out {
		s.out = append(s.out, v.id)
	}
	b.scratch = max(b.scratch, scratch)
	var desc strings.Builder
	for k, v := range in {
		if v != nil && (k == 0 || !v.static()) {
			desc.WriteString(shapeString(v.shape))
		}
	}
	desc.WriteString("->")
	for _, v := range out {
		desc.WriteString(shapeString(v.shape))
	}
	s.desc = desc.String()
	b.steps = append(b.steps, s)
}

// describe appends detail (such as the kernel variant) to the last step's
// description.
func (b *builder) describe(detail string) {
	s := &b.steps[len(b.steps)-1]
	s.desc += " " + detail
}

// fold runs the steps from mark on (whose inputs were all static) right
// away and turns their outputs into static values.
func (b *builder) fold(mark int, outs []*value) {
	bufs := make([][]float32, len(b.sizes))
	for _, s := range b.steps[mark:] {
		for _, id := range s.out {
			if bufs[id] == nil {
				bufs[id] = make([]float32, b.sizes[id])
			}
		}
	}
	scratch := make([]float32, b.scratch)
	for _, s := range b.steps[mark:] {
		s.run(bufs, scratch, nil)
	}
	b.steps = b.steps[:mark]
	for _, v := range outs {
		if v != nil && !v.static() {
			v.st = &tensor{shape: v.shape, f: bufs[v.id]}
			v.id = -1
		}
	}
}

// plan is an executable schedule for one set of input shapes.
type plan struct {
	steps   []step
	inputs  []int    // value id of each graph input
	outputs []*value // each graph output (static or dynamic)
	phys    []int    // value id -> physical buffer index (-1: none)
	bufSize []int    // size of each physical buffer
	sizes   []int    // value id -> element count
	threads int
	scratch int

	mu      sync.Mutex
	pool    []*workspace // idle workspaces
	retired bool         // evicted or closed: workspaces are not kept
}

// workspace is the memory one run uses: allocated once, reused by later
// runs of the same plan.
type workspace struct {
	bufs    [][]float32
	scratch []float32
	team    *team
}

func (p *plan) newWorkspace() *workspace {
	phys := make([][]float32, len(p.bufSize))
	for i, n := range p.bufSize {
		phys[i] = make([]float32, n)
	}
	ws := &workspace{bufs: make([][]float32, len(p.phys)), scratch: make([]float32, p.scratch), team: newTeam(p.threads)}
	for id, pi := range p.phys {
		if pi >= 0 {
			ws.bufs[id] = phys[pi][:p.sizes[id]]
		}
	}
	return ws
}

// allocate assigns physical buffers to dynamic values by liveness: a buffer
// is reused once every value sharing it has been read for the last time.
func (b *builder) allocate(inputs []int, outputs []*value) *plan {
	nv := len(b.sizes)
	const never = -2
	def := make([]int, nv)
	last := make([]int, nv)
	need := make([]int, nv)
	for i := range def {
		def[i], last[i] = never, never
	}
	touch := func(id, at int) {
		r := b.base[id]
		if def[r] == never || at < def[r] {
			def[r] = at
		}
		last[r] = max(last[r], at)
		need[r] = max(need[r], b.sizes[id])
	}
	for _, id := range inputs {
		touch(id, -1)
	}
	for s, st := range b.steps {
		for _, id := range st.out {
			touch(id, s)
		}
		for _, id := range st.in {
			touch(id, s)
		}
	}
	for _, v := range outputs {
		if !v.static() {
			touch(v.id, len(b.steps))
		}
	}
	p := &plan{steps: b.steps, inputs: inputs, outputs: outputs, scratch: b.scratch, phys: make([]int, nv), sizes: b.sizes, threads: b.threads}
	rootPhys := make([]int, nv)
	for i := range rootPhys {
		rootPhys[i] = -1
	}
	var freeList []int
	take := func(r int) {
		best := -1
		for k, pi := range freeList {
			if best < 0 || fits(p.bufSize, pi, freeList[best], need[r]) {
				best = k
			}
		}
		if best < 0 {
			rootPhys[r] = len(p.bufSize)
			p.bufSize = append(p.bufSize, need[r])
			return
		}
		pi := freeList[best]
		freeList = append(freeList[:best], freeList[best+1:]...)
		p.bufSize[pi] = max(p.bufSize[pi], need[r])
		rootPhys[r] = pi
	}
	// Roots ordered by definition time; buffers are released after the
	// step of their last use.
	byDef := make([][]int, len(b.steps)+2)
	byLast := make([][]int, len(b.steps)+2)
	for r := range nv {
		if b.base[r] == r && def[r] != never {
			byDef[def[r]+1] = append(byDef[def[r]+1], r)
			byLast[last[r]+1] = append(byLast[last[r]+1], r)
		}
	}
	for t := range byDef {
		for _, r := range byDef[t] {
			take(r)
		}
		for _, r := range byLast[t] {
			freeList = append(freeList, rootPhys[r])
		}
		sort.Ints(freeList)
	}
	for id := range nv {
		p.phys[id] = rootPhys[b.base[id]]
	}
	return p
}

// fits reports whether buffer a is a better choice than buffer b for n
// elements: the smallest that already holds n, else the largest.
func fits(size []int, a, b, n int) bool {
	sa, sb := size[a], size[b]
	switch {
	case sa >= n && sb >= n:
		return sa < sb
	case sa >= n:
		return true
	case sb >= n:
		return false
	}
	return sa > sb
}

// build plans g for the given input shapes.
func build(g *onnx.Graph, statics map[string]*tensor, inShapes map[string][]int, threads int, opset int64) (*plan, error) {
	b := &builder{threads: threads, vals: make(map[string]*value, len(g.Nodes)*2),
		fusable: map[int]*fusable{}, uses: map[string]int{}}
	for _, n := range g.Nodes {
		for _, name := range n.Inputs {
			b.uses[name]++
		}
	}
	for _, o := range g.Outputs {
		b.uses[o.Name]++
	}
	for name, t := range statics {
		b.vals[name] = &value{shape: t.shape, st: t, id: -1}
	}
	var inputs []int
	for _, in := range g.Inputs {
		if _, init := statics[in.Name]; init {
			continue
		}
		v, err := b.newDyn(inShapes[in.Name])
		if err != nil {
			return nil, fmt.Errorf("input %q: %w", in.Name, err)
		}
		b.vals[in.Name] = v
		inputs = append(inputs, v.id)
	}
	for k, f := range fuseGDN(g) {
		n := f.node
		err := b.node(n, opset)
		if errors.Is(err, errNoFusion) {
			for _, o := range f.orig {
				if err = b.node(o, opset); err != nil {
					n = o
					break
				}
			}
		}
		if err != nil {
			name := n.Name
			if name == "" {
				name = fmt.Sprintf("#%d", k)
			}
			return nil, fmt.Errorf("node %s (%s): %w", name, n.OpType, err)
		}
	}
	outs := make([]*value, len(g.Outputs))
	for k, o := range g.Outputs {
		v, ok := b.vals[o.Name]
		if !ok {
			return nil, fmt.Errorf("graph output %q is produced by no node", o.Name)
		}
		if v.static() && v.st.isInt() {
			return nil, fmt.Errorf("graph output %q is an integer tensor; only float outputs are supported", o.Name)
		}
		outs[k] = v
	}
	return b.allocate(inputs, outs), nil
}

func (b *builder) node(n *onnx.Node, opset int64) error {
	if n.Domain == fusedDomain {
		c := &opCtx{b: b, n: n, opset: opset}
		for _, name := range n.Inputs {
			c.in = append(c.in, b.vals[name])
		}
		outs, err := dGDN(c)
		if err != nil {
			return err
		}
		b.vals[n.Outputs[0]] = outs[0]
		return nil
	}
	if n.Domain != "" && n.Domain != "ai.onnx" {
		return fmt.Errorf("operator domain %q is not supported", n.Domain)
	}
	ins := make([]*value, len(n.Inputs))
	allStatic := true
	for k, name := range n.Inputs {
		if name == "" {
			continue
		}
		v, ok := b.vals[name]
		if !ok {
			return fmt.Errorf("input %q is not defined before use (graph not topologically sorted?)", name)
		}
		ins[k] = v
		allStatic = allStatic && v.static()
	}
	c := &opCtx{b: b, n: n, in: ins, opset: opset}
	var outs []*value
	var err error
	sf, isStatic := staticOps[n.OpType]
	df, isDyn := dynOps[n.OpType]
	switch {
	case isStatic && allStatic:
		outs, err = sf(c)
	case isDyn:
		mark := len(b.steps)
		outs, err = df(c)
		if err == nil && allStatic {
			b.fold(mark, outs)
		}
	case isStatic:
		return fmt.Errorf("operator %s is supported only on values known before the run", n.OpType)
	default:
		return fmt.Errorf("operator %s is not supported by the native engine", n.OpType)
	}
	if err != nil {
		return err
	}
	if len(outs) < len(n.Outputs) {
		for _, name := range n.Outputs[len(outs):] {
			if name != "" {
				return fmt.Errorf("optional output %q is not supported", name)
			}
		}
	}
	for k, name := range n.Outputs {
		if name != "" && k < len(outs) && outs[k] != nil {
			b.vals[name] = outs[k]
		}
	}
	return nil
}
