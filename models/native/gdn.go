package native

import (
	"errors"

	"github.com/splitstream/splitstream/models/internal/onnx"
	"github.com/splitstream/splitstream/models/native/internal/gemm"
)

// The GDN of CompressAI (and of the Entropic Student's encoder) exports as
//
//	s = Pow(x, 2) or Mul(x, x)
//	c = Conv(s, gamma)            1x1, stride 1, no padding, one group
//	a = Add(c, beta)              or beta as the Conv's bias
//	r = Sqrt(a)
//	y = Div(x, r)                 (inverse GDN: Mul(x, r))
//
// Five passes over the feature map; gdnOp runs them as one, tile by tile,
// with the squares and the normalizer kept in cache.

const fusedDomain = "splitstream.fused"

// fusion is a fused node with the nodes it replaces, planned instead when
// the fused kernel does not apply.
type fusion struct {
	node *onnx.Node
	orig []*onnx.Node
}

// fuseGDN returns g's nodes with each GDN chain replaced by one node.
func fuseGDN(g *onnx.Graph) []fusion {
	producer := map[string]int{}
	uses := map[string]int{}
	for k, n := range g.Nodes {
		for _, o := range n.Outputs {
			producer[o] = k
		}
		for _, in := range n.Inputs {
			uses[in]++
		}
	}
	for _, o := range g.Outputs {
		uses[o.Name] += 2 // never fuse away a graph output
	}
	// prev returns the node producing input k of n, if only n reads it.
	prev := func(n *onnx.Node, k int) *onnx.Node {
		if k >= len(n.Inputs) || uses[n.Inputs[k]] != 1 {
			return nil
		}
		p, ok := producer[n.Inputs[k]]
		if !ok {
			return nil
		}
		return g.Nodes[p]
	}
	drop := map[*onnx.Node]bool{}
	repl := map[*onnx.Node]fusion{}
	for _, div := range g.Nodes {
		if (div.OpType != "Div" && div.OpType != "Mul") || len(div.Inputs) != 2 || div.Domain != "" {
			continue
		}
		sqrt := prev(div, 1)
		if sqrt == nil || sqrt.OpType != "Sqrt" {
			continue
		}
		x := div.Inputs[0]
		add := prev(sqrt, 0)
		if add == nil {
			continue
		}
		conv, beta := add, ""
		if add.OpType == "Add" && len(add.Inputs) == 2 {
			conv, beta = prev(add, 0), add.Inputs[1]
			if conv == nil || conv.OpType != "Conv" {
				conv, beta = prev(add, 1), add.Inputs[0]
			}
		}
		if conv == nil || conv.OpType != "Conv" || len(conv.Inputs) < 2 || !plainPointwise(conv) {
			continue
		}
		bias := ""
		if len(conv.Inputs) > 2 {
			bias = conv.Inputs[2]
		}
		if beta == "" && bias == "" {
			continue
		}
		sq := prev(conv, 0)
		if sq == nil || len(sq.Inputs) != 2 || sq.Inputs[0] != x ||
			!(sq.OpType == "Mul" && sq.Inputs[1] == x || sq.OpType == "Pow") {
			continue
		}
		chain := []*onnx.Node{sq, conv}
		if add != conv {
			chain = append(chain, add)
		}
		chain = append(chain, sqrt, div)
		fused := &onnx.Node{Name: div.Name, OpType: "GDN", Domain: fusedDomain,
			Inputs:  []string{x, conv.Inputs[1], bias, beta, sq.Inputs[1]},
			Outputs: div.Outputs,
			Attrs:   map[string]*onnx.Attribute{"inverse": {I: b2i(div.OpType == "Mul")}, "square_by_mul": {I: b2i(sq.OpType == "Mul")}}}
		for _, n := range chain {
			drop[n] = true
		}
		repl[div] = fusion{node: fused, orig: chain}
	}
	out := make([]fusion, 0, len(g.Nodes))
	for _, n := range g.Nodes {
		if f, ok := repl[n]; ok {
			out = append(out, f)
			continue
		}
		if !drop[n] {
			out = append(out, fusion{node: n})
		}
	}
	// A chain is replaced at its last node; every node it dropped runs
	// before that point in the original order, so the order stays valid.
	return out
}

// plainPointwise reports whether a Conv node's attributes make it a plain
// 1x1 convolution: one group, unit strides and dilations, no padding.
func plainPointwise(n *onnx.Node) bool {
	for name, a := range n.Attrs {
		switch name {
		case "group":
			if a.I != 1 {
				return false
			}
		case "kernel_shape", "strides", "dilations":
			for _, v := range a.Ints {
				if v != 1 {
					return false
				}
			}
		case "pads":
			for _, v := range a.Ints {
				if v != 0 {
					return false
				}
			}
		case "auto_pad":
			if s := string(a.S); s != "NOTSET" && s != "VALID" {
				return false
			}
		default:
			return false
		}
	}
	return true
}

var errNoFusion = errors.New("fusion does not apply")

// dGDN plans the fused GDN, or returns errNoFusion when a condition fails
// (then the original nodes are planned).
func dGDN(c *opCtx) ([]*value, error) {
	x, gamma, bias, beta, exp := c.input(0), c.input(1), c.input(2), c.input(3), c.input(4)
	if x == nil || gamma == nil || x.static() || !gamma.static() || len(x.shape) != 4 {
		return nil, errNoFusion
	}
	if c.attrInt("square_by_mul", 0) == 0 {
		if exp == nil || !exp.static() || exp.st.len() != 1 || exp.st.floats()[0] != 2 {
			return nil, errNoFusion
		}
	}
	n, ch, h, w := x.shape[0], x.shape[1], x.shape[2], x.shape[3]
	if len(gamma.st.shape) != 4 || gamma.st.shape[0] != ch || gamma.st.shape[1] != ch ||
		gamma.st.shape[2] != 1 || gamma.st.shape[3] != 1 || gamma.st.isInt() {
		return nil, errNoFusion
	}
	off := make([]float32, ch)
	if bias != nil {
		if !bias.static() || bias.st.isInt() || bias.st.len() != ch {
			return nil, errNoFusion
		}
		copy(off, bias.st.f)
	}
	if beta != nil {
		// Per channel: [C 1 1] after any leading ones.
		s := beta.shape
		for len(s) > 3 && s[0] == 1 {
			s = s[1:]
		}
		if !beta.static() || beta.st.isInt() || len(s) != 3 || s[0] != ch || s[1] != 1 || s[2] != 1 {
			return nil, errNoFusion
		}
		for i, f := range beta.st.f {
			off[i] += f
		}
	}
	y, err := c.out(x.shape)
	if err != nil {
		return nil, err
	}
	inverse := c.attrInt("inverse", 0) != 0
	hw := h * w
	threads := c.b.threads
	tile := max(64, (32<<10)/ch)
	tile = min(tile, max(16, hw/(8*max(threads, 1))))
	tile = min((tile+15)&^15, hw)
	tiles := (hw + tile - 1) / tile
	pa := gemm.PackA(ch, ch, gamma.st.f, ch)
	xo := opnd(x)
	c.b.add("GDN", []*value{x}, []*value{y}, threads*ch*tile, func(bufs [][]float32, sc []float32, tm *team) {
		xs, ys := xo.get(bufs), bufs[y.id]
		tm.parallelWorkers(n*tiles, 1, threads, func(worker, item, _ int) {
			b, t := item/tiles, item%tiles
			j0 := t * tile
			tn := min(j0+tile, hw) - j0
			xb, yb := xs[b*ch*hw:], ys[b*ch*hw:]
			sq := sc[worker*ch*tile : worker*ch*tile+ch*tn]
			for r := range ch {
				square(sq[r*tn:(r+1)*tn], xb[r*hw+j0:r*hw+j0+tn])
			}
			gemm.SgemmPacked(pa, tn, sq, tn, yb[j0:], hw, false, 1)
			for r := range ch {
				src, dst := xb[r*hw+j0:r*hw+j0+tn], yb[r*hw+j0:r*hw+j0+tn]
				if inverse {
					gdnMul(dst, src, off[r])
				} else {
					gdnDiv(dst, src, off[r])
				}
			}
		})
	})
	return []*value{y}, nil
}
