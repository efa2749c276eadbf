package learn

import (
	"fmt"
	"math"
)

// Model names a learning algorithm.
type Model uint8

// The models.
const (
	// Pegasos is a multi-class linear SVM (Crammer and Singer's loss)
	// trained with Pegasos's stochastic sub-gradient steps (Shalev-Shwartz
	// et al., 2011): step size 1/(λt), projection onto the ball of radius
	// 1/√λ.
	Pegasos Model = 1
	// Logistic is multinomial logistic regression (softmax, L2) trained with
	// SGD at step size η₀/(1 + η₀λt) (Bottou, 2012).
	Logistic Model = 2
)

func (m Model) String() string {
	switch m {
	case Pegasos:
		return "pegasos"
	case Logistic:
		return "logistic"
	}
	return fmt.Sprintf("model(%d)", uint8(m))
}

// ParseModel parses "pegasos" or "logistic".
func ParseModel(s string) (Model, error) {
	for _, m := range []Model{Pegasos, Logistic} {
		if s == m.String() {
			return m, nil
		}
	}
	return 0, fmt.Errorf("learn: unknown model %q (want pegasos or logistic)", s)
}

// linear is a K x D weight matrix W = scale * v, one row per class, with
// the step of either model. Keeping the scale apart makes the L2 shrinking
// of every step O(1) instead of O(KD): Pegasos then touches two rows per
// step, logistic regression every row.
type linear struct {
	kind   Model
	k, d   int
	v      []float32
	scale  float64
	sqnorm float64 // ||v||², kept up to date by Pegasos for its projection
	t      uint64  // steps taken
	lambda float64
	lr     float64 // Logistic's η₀
	dots   []float64
}

func newLinear(kind Model, k, d int, lambda, lr float64) *linear {
	return &linear{kind: kind, k: k, d: d, v: make([]float32, k*d), scale: 1, lambda: lambda, lr: lr, dots: make([]float64, k)}
}

// addClass appends a zero row.
func (m *linear) addClass() {
	m.v = append(m.v, make([]float32, m.d)...)
	m.k++
	m.dots = append(m.dots, 0)
}

func dot(a, b []float32) float64 {
	var s float64
	for i, v := range a {
		s += float64(v) * float64(b[i])
	}
	return s
}

// axpy adds a*x to y.
func axpy(a float32, x, y []float32) {
	for i, v := range x {
		y[i] += a * v
	}
}

func (m *linear) row(c int) []float32 { return m.v[c*m.d : (c+1)*m.d] }

// scores writes the decision value of every class for x into dst.
func (m *linear) scores(dst []float32, x []float32) []float32 {
	dst = dst[:0]
	for c := range m.k {
		dst = append(dst, float32(m.scale*dot(m.row(c), x)))
	}
	return dst
}

// step takes one stochastic step on sample (x, y).
func (m *linear) step(x []float32, y int) {
	m.t++
	for c := range m.k {
		m.dots[c] = dot(m.row(c), x)
	}
	if m.kind == Pegasos {
		m.pegasos(x, y)
	} else {
		m.logistic(x, y)
	}
	if m.scale < 1e-6 {
		m.fold()
	}
}

// pegasos is one step of Pegasos on the Crammer-Singer loss
// max(0, 1 + w_r·x - w_y·x), r the best class other than y.
func (m *linear) pegasos(x []float32, y int) {
	eta := 1 / (m.lambda * float64(m.t))
	r, best := -1, math.Inf(-1)
	for c, d := range m.dots {
		if c != y && d > best {
			r, best = c, d
		}
	}
	loss := 0.0
	if r >= 0 {
		loss = 1 + m.scale*(m.dots[r]-m.dots[y])
	}
	// W <- (1 - ηλ) W = (1 - 1/t) W.
	if m.t == 1 {
		clear(m.v)
		m.scale, m.sqnorm = 1, 0
	} else {
		m.scale *= 1 - 1/float64(m.t)
	}
	if loss > 0 {
		a := eta / m.scale
		xx := dot(x, x)
		for _, u := range []struct {
			c int
			a float64
		}{{y, a}, {r, -a}} {
			// ||v_c + a x||² = ||v_c||² + 2a v_c·x + a²||x||²; the dot is
			// still v_c·x: rows y and r differ.
			m.sqnorm += 2*u.a*m.dots[u.c] + u.a*u.a*xx
			axpy(float32(u.a), x, m.row(u.c))
		}
	}
	if norm := m.scale * math.Sqrt(max(m.sqnorm, 0)); norm > 1/math.Sqrt(m.lambda) {
		m.scale *= 1 / (math.Sqrt(m.lambda) * norm)
	}
}

// logistic is one SGD step on the L2-regularised softmax cross-entropy.
func (m *linear) logistic(x []float32, y int) {
	eta := m.lr / (1 + m.lr*m.lambda*float64(m.t))
	top := math.Inf(-1)
	for c := range m.dots {
		m.dots[c] *= m.scale
		top = max(top, m.dots[c])
	}
	var z float64
	for c, d := range m.dots {
		m.dots[c] = math.Exp(d - top)
		z += m.dots[c]
	}
	m.scale *= 1 - eta*m.lambda
	for c, p := range m.dots {
		g := p / z
		if c == y {
			g--
		}
		axpy(float32(-eta*g/m.scale), x, m.row(c))
	}
}

// fold multiplies the scale into v, before it underflows.
func (m *linear) fold() {
	s := float32(m.scale)
	for i := range m.v {
		m.v[i] *= s
	}
	m.sqnorm = dot(m.v, m.v)
	m.scale = 1
}
