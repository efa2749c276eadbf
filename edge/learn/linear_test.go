package learn

import (
	"math"
	"math/rand/v2"
	"testing"
)

// blobs returns n samples of k classes in d >= k dimensions: class c is
// 4·e_c plus noise uniform in [-0.5, 0.5] on every axis, with each label
// flipped to another class with probability flip. W* with rows e_c/3
// separates the clean samples with a Crammer-Singer margin of at least 1:
// (w_y - w_r)·x = 4(x_y - x_r)/12 >= 4(3.5 - 0.5)/12 = 1.
func blobs(rng *rand.Rand, n, k, d int, flip float64) ([][]float32, []int) {
	xs, ys := make([][]float32, n), make([]int, n)
	for i := range xs {
		y := rng.IntN(k)
		x := make([]float32, d)
		for j := range x {
			x[j] = float32(rng.Float64() - 0.5)
		}
		x[y] += 4
		if rng.Float64() < flip {
			y = (y + 1 + rng.IntN(k-1)) % k
		}
		xs[i], ys[i] = x, y
	}
	return xs, ys
}

// marginW is W* of blobs.
func marginW(k, d int) [][]float64 {
	w := make([][]float64, k)
	for c := range w {
		w[c] = make([]float64, d)
		w[c][c] = 1.0 / 3
	}
	return w
}

func weights(m *linear) [][]float64 {
	w := make([][]float64, m.k)
	for c := range w {
		for _, v := range m.row(c) {
			w[c] = append(w[c], m.scale*float64(v))
		}
	}
	return w
}

func scoresOf(w [][]float64, x []float32) []float64 {
	s := make([]float64, len(w))
	for c, row := range w {
		for j, v := range row {
			s[c] += v * float64(x[j])
		}
	}
	return s
}

// objective is the model's regularised objective for weights w:
// λ/2·||W||² plus the mean Crammer-Singer hinge loss (Pegasos) or the mean
// softmax cross-entropy (Logistic).
func objective(kind Model, lambda float64, w [][]float64, xs [][]float32, ys []int) float64 {
	var reg float64
	for _, row := range w {
		for _, v := range row {
			reg += v * v
		}
	}
	var loss float64
	for i, x := range xs {
		s := scoresOf(w, x)
		y := ys[i]
		if kind == Pegasos {
			worst := 0.0
			for c, v := range s {
				if c != y {
					worst = max(worst, 1+v-s[y])
				}
			}
			loss += worst
		} else {
			top := math.Inf(-1)
			for _, v := range s {
				top = max(top, v)
			}
			var z float64
			for _, v := range s {
				z += math.Exp(v - top)
			}
			loss += math.Log(z) + top - s[y]
		}
	}
	return lambda/2*reg + loss/float64(len(xs))
}

func accuracy(w [][]float64, xs [][]float32, ys []int) float64 {
	right := 0
	for i, x := range xs {
		s := scoresOf(w, x)
		best := 0
		for c := range s {
			if s[c] > s[best] {
				best = c
			}
		}
		if best == ys[i] {
			right++
		}
	}
	return float64(right) / float64(len(xs))
}

func train(m *linear, rng *rand.Rand, xs [][]float32, ys []int, epochs int) {
	for range epochs {
		for _, i := range rng.Perm(len(xs)) {
			m.step(xs[i], ys[i])
		}
	}
}

// TestPegasosMargin trains Pegasos on separable and on noisy blobs and
// checks its objective against that of W*, which bounds the optimum from
// above, and its accuracy on clean samples.
func TestPegasosMargin(t *testing.T) {
	const k, d, lambda = 4, 6, 0.01
	for _, flip := range []float64{0, 0.1} {
		rng := rand.New(rand.NewPCG(1, uint64(flip*100)))
		xs, ys := blobs(rng, 400, k, d, flip)
		m := newLinear(Pegasos, k, d, lambda, 0)
		train(m, rng, xs, ys, 30)
		w := weights(m)
		got, bound := objective(Pegasos, lambda, w, xs, ys), objective(Pegasos, lambda, marginW(k, d), xs, ys)
		t.Logf("flip %.1f: objective %.5f, W*'s %.5f, zero model's 1", flip, got, bound)
		if got > bound+0.01 {
			t.Errorf("flip %.1f: objective %.5f, over W*'s %.5f + 0.01", flip, got, bound)
		}
		cx, cy := blobs(rng, 1000, k, d, 0)
		if acc := accuracy(w, cx, cy); acc < 0.99 {
			t.Errorf("flip %.1f: accuracy on clean samples %.3f, want >= 0.99 (W* has 1)", flip, acc)
		}
		// ||W|| stays in Pegasos's ball.
		if norm := m.scale * math.Sqrt(m.sqnorm); norm > 1/math.Sqrt(lambda)*(1+1e-9) {
			t.Errorf("flip %.1f: ||W|| = %v, over 1/√λ", flip, norm)
		}
	}
}

// TestPegasosNormTracking checks the incrementally kept ||v||² against a
// recomputation after many steps.
func TestPegasosNormTracking(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	xs, ys := blobs(rng, 300, 3, 5, 0.2)
	m := newLinear(Pegasos, 3, 5, 1e-3, 0)
	train(m, rng, xs, ys, 5)
	want := dot(m.v, m.v)
	if math.Abs(m.sqnorm-want) > 1e-4*want { // v is float32, the norm float64
		t.Fatalf("||v||² kept as %v, recomputed %v", m.sqnorm, want)
	}
}

// logisticOptimum minimises the logistic objective by full-batch gradient
// descent in float64.
func logisticOptimum(lambda float64, k, d int, xs [][]float32, ys []int) [][]float64 {
	w := make([][]float64, k)
	for c := range w {
		w[c] = make([]float64, d)
	}
	g := make([][]float64, k)
	for c := range g {
		g[c] = make([]float64, d)
	}
	const step = 0.5
	for range 1500 {
		for c := range g {
			for j := range g[c] {
				g[c][j] = lambda * w[c][j]
			}
		}
		for i, x := range xs {
			s := scoresOf(w, x)
			top := math.Inf(-1)
			for _, v := range s {
				top = max(top, v)
			}
			var z float64
			for c := range s {
				s[c] = math.Exp(s[c] - top)
				z += s[c]
			}
			for c := range s {
				p := s[c] / z
				if c == ys[i] {
					p--
				}
				for j, v := range x {
					g[c][j] += p * float64(v) / float64(len(xs))
				}
			}
		}
		for c := range w {
			for j := range w[c] {
				w[c][j] -= step * g[c][j]
			}
		}
	}
	return w
}

// TestLogisticOptimum checks SGD against the optimum found by full-batch
// gradient descent, on separable and noisy data.
func TestLogisticOptimum(t *testing.T) {
	const k, d, lambda = 3, 4, 0.01
	for _, flip := range []float64{0, 0.2} {
		rng := rand.New(rand.NewPCG(7, uint64(flip*100)))
		xs, ys := blobs(rng, 300, k, d, flip)
		for _, x := range xs { // smaller inputs keep the full-batch step stable
			for j := range x {
				x[j] /= 4
			}
		}
		opt := logisticOptimum(lambda, k, d, xs, ys)
		m := newLinear(Logistic, k, d, lambda, 0.5)
		train(m, rng, xs, ys, 40)
		got, best := objective(Logistic, lambda, weights(m), xs, ys), objective(Logistic, lambda, opt, xs, ys)
		t.Logf("flip %.1f: objective %.5f, optimum %.5f, zero model's %.5f", flip, got, best, math.Log(k))
		if got < best-1e-6 {
			t.Errorf("flip %.1f: objective %.6f below the optimum %.6f: the reference did not converge", flip, got, best)
		}
		if got > best+0.01*best {
			t.Errorf("flip %.1f: objective %.5f, more than 1%% over the optimum %.5f", flip, got, best)
		}
	}
}

// TestFold checks that folding the scale into the weights keeps the model.
func TestFold(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 9))
	xs, ys := blobs(rng, 100, 3, 4, 0)
	for _, kind := range []Model{Pegasos, Logistic} {
		m := newLinear(kind, 3, 4, 0.1, 0.5)
		train(m, rng, xs, ys, 2)
		before := m.scores(nil, xs[0])
		m.fold()
		after := m.scores(nil, xs[0])
		for c := range before {
			if math.Abs(float64(before[c]-after[c])) > 1e-5*math.Abs(float64(before[c]))+1e-6 {
				t.Errorf("%v: score %d was %v, %v after fold", kind, c, before[c], after[c])
			}
		}
	}
}
