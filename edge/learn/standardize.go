package learn

import "math"

// runningStats are the running mean and variance of every feature
// (Welford's algorithm), updated with each new sample; standardize maps a
// feature vector to zero mean and variance 1/dim with the current figures,
// so that its norm is about 1 whatever the dimension and the step sizes
// and λ need no tuning per feature choice.
type runningStats struct {
	n    uint64
	mean []float64
	m2   []float64 // sum of squared deviations from the mean
}

func newRunningStats(dim int) runningStats {
	return runningStats{mean: make([]float64, dim), m2: make([]float64, dim)}
}

func (s *runningStats) add(x []float32) {
	s.n++
	n := float64(s.n)
	for i, v := range x {
		d := float64(v) - s.mean[i]
		s.mean[i] += d / n
		s.m2[i] += d * (float64(v) - s.mean[i])
	}
}

// minVar keeps a feature that has been constant so far from being blown up.
const minVar = 1e-6

// standardize writes (x - mean) / (std √dim) into dst, then a constant 1
// (the bias feature): dst has len(x)+1 elements. Before any sample it
// writes zeros and the bias.
func (s *runningStats) standardize(dst, x []float32) {
	if s.n == 0 {
		clear(dst)
	} else {
		n, d := float64(s.n), float64(len(x))
		for i, v := range x {
			dst[i] = float32((float64(v) - s.mean[i]) / math.Sqrt(d*(s.m2[i]/n+minVar)))
		}
	}
	dst[len(x)] = 1
}
