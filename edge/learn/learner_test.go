package learn

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/splitstream/splitstream/codec"
)

var (
	testShape  = codec.Shape{C: 3, H: 4, W: 4}
	testLabels = []string{"a", "b", "c"}
	testBundle = [32]byte{1, 2, 3}
)

// latentOf returns a latent of testShape in which class c lights up
// channel c (values of a quantised latent: small integers plus a median).
func latentOf(rng *rand.Rand, c int) []float32 {
	y := make([]float32, testShape.Len())
	plane := testShape.H * testShape.W
	for i := range y {
		y[i] = 0.25
		if i/plane == c && rng.IntN(3) > 0 {
			y[i] += float32(1 + rng.IntN(3))
		}
		if rng.IntN(10) == 0 {
			y[i] += float32(rng.IntN(3) - 1)
		}
	}
	return y
}

func testLearner(t *testing.T, cfg Config) *Learner {
	t.Helper()
	l, err := New(testBundle, testShape, testLabels, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func feed(t *testing.T, l *Learner, rng *rand.Rand, n int) {
	t.Helper()
	for range n {
		c := rng.IntN(len(testLabels))
		if err := l.Learn(latentOf(rng, c), c); err != nil {
			t.Fatal(err)
		}
	}
}

func heldOut(t *testing.T, l *Learner, rng *rand.Rand, n int) float64 {
	t.Helper()
	right := 0
	for range n {
		c := rng.IntN(len(testLabels))
		p, err := l.Predict(latentOf(rng, c))
		if err != nil {
			t.Fatal(err)
		}
		if p.Class == c {
			right++
		}
	}
	return float64(right) / float64(n)
}

// TestLearner learns separable synthetic latents with both models and
// both kinds of features, through the whole path: features, running
// standardisation, steps and replays.
func TestLearner(t *testing.T) {
	for _, m := range []Model{Pegasos, Logistic} {
		for _, f := range []Features{{Stats: Mean}, {Stats: Max | Std, Grid: 2, Global: true}, {Filters: 8, Seed: 3}} {
			rng := rand.New(rand.NewPCG(11, 12))
			l := testLearner(t, Config{Model: m, Features: f, Buffer: 100, EpochEvery: 50})
			feed(t, l, rng, 300)
			if acc := heldOut(t, l, rng, 200); acc < 0.97 {
				t.Errorf("%v %v: held-out accuracy %.3f, want >= 0.97", m, f, acc)
			}
			if got := l.Info().Samples; got != 300 {
				t.Errorf("%v: %d samples learned, want 300", m, got)
			}
		}
	}
}

// TestBufferBound feeds ten times the buffer's capacity: the buffer stays
// at capacity, never reallocates, and keeps a uniform sample of the
// stream (as many early samples as late ones, within sampling noise).
func TestBufferBound(t *testing.T) {
	const capacity = 200
	rng := rand.New(rand.NewPCG(13, 14))
	l := testLearner(t, Config{Buffer: capacity, EpochEvery: 500})
	bytes := l.Info().Bytes
	x0 := &l.buf.x[:1][0]
	early := 0
	for i := range 10 * capacity {
		c := 0
		if i >= 5*capacity {
			c = 1 // the second half of the stream is class 1
		}
		if err := l.Learn(latentOf(rng, c), c); err != nil {
			t.Fatal(err)
		}
	}
	if n := l.buf.len(); n != capacity {
		t.Fatalf("buffer holds %d samples, capacity %d", n, capacity)
	}
	if &l.buf.x[:1][0] != x0 || cap(l.buf.x) != capacity*l.feat.dim {
		t.Fatal("the buffer reallocated")
	}
	if got := l.Info().Bytes; got != bytes {
		t.Fatalf("state grew from %d to %d bytes", bytes, got)
	}
	for _, y := range l.buf.y {
		if y == 0 {
			early++
		}
	}
	// Binomial(200, 0.5): 5 standard deviations are ±35.
	if early < capacity/2-35 || early > capacity/2+35 {
		t.Errorf("%d of %d buffered samples come from the first half of the stream", early, capacity)
	}
}

// TestLearnAllocates checks that learning and predicting allocate nothing
// once the learner exists: its memory is what New allocated.
func TestLearnAllocates(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	for _, f := range []Features{{}, {Filters: 4}} {
		l := testLearner(t, Config{Buffer: 20, EpochEvery: 10, Features: f})
		y := latentOf(rng, 1)
		if n := testing.AllocsPerRun(100, func() {
			if err := l.Learn(y, 1); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("%v: Learn allocates %v times per call", f, n)
		}
		if n := testing.AllocsPerRun(100, func() {
			if _, err := l.Predict(y); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("%v: Predict allocates %v times per call", f, n)
		}
	}
}

func TestLearnCloudThreshold(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	l := testLearner(t, Config{MinScore: 0.6})
	for _, tc := range []struct {
		score float32
		want  bool
	}{{0.59, false}, {0.6, true}, {0.99, true}, {float32(math.NaN()), false}} {
		before := l.Info().Samples
		ok, err := l.LearnCloud(latentOf(rng, 2), 2, tc.score)
		if err != nil {
			t.Fatal(err)
		}
		if ok != tc.want || (l.Info().Samples > before) != tc.want {
			t.Errorf("score %v: learned %v, want %v", tc.score, ok, tc.want)
		}
	}
}

// TestLearnLabelNewClass teaches a class the cloud does not have and
// checks it is predicted afterwards, and that MaxClasses bounds the
// classes.
func TestLearnLabelNewClass(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 20))
	shape := codec.Shape{C: 4, H: 4, W: 4}
	l, err := New(testBundle, shape, testLabels, Config{MaxClasses: 4, Features: Features{Stats: Mean}, Buffer: 100, EpochEvery: 50})
	if err != nil {
		t.Fatal(err)
	}
	latent := func(c int) []float32 {
		y := make([]float32, shape.Len())
		for i := c * 16; i < (c+1)*16; i++ {
			y[i] = float32(1 + rng.IntN(3))
		}
		return y
	}
	for i := range 400 {
		c := i % 4
		if c == 3 {
			err = l.LearnLabel(latent(c), "umbrella")
		} else {
			err = l.LearnLabel(latent(c), testLabels[c])
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	p, err := l.Predict(latent(3))
	if err != nil {
		t.Fatal(err)
	}
	if p.Label != "umbrella" || p.Class != 3 {
		t.Errorf("predicted %+v, want the new class umbrella (3)", p)
	}
	if err := l.LearnLabel(latent(0), "fifth"); err == nil {
		t.Error("a fifth class was accepted with MaxClasses 4")
	}
}

func TestBadInput(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	l := testLearner(t, Config{})
	y := latentOf(rng, 0)
	nan := latentOf(rng, 0)
	nan[5] = float32(math.NaN())
	for name, err := range map[string]error{
		"short latent":  l.Learn(y[1:], 0),
		"NaN":           l.Learn(nan, 0),
		"class -1":      l.Learn(y, -1),
		"class 3 of 3":  l.Learn(y, 3),
		"predict short": func() error { _, err := l.Predict(y[:3]); return err }(),
	} {
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if !errors.Is(l.Learn(y[1:], 0), ErrLatent) {
		t.Error("a short latent is not ErrLatent")
	}
	if l.Info().Samples != 0 {
		t.Error("a refused sample was counted")
	}
	for name, cfg := range map[string]Config{
		"even kernel":   {Features: Features{Filters: 2, Kernel: 2}},
		"grid too fine": {Features: Features{Grid: 5}},
		"too many dims": {Features: Features{Filters: 100}, MaxFeatures: 50},
		"lambda":        {Lambda: -1},
	} {
		if _, err := New(testBundle, testShape, testLabels, cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := New(testBundle, testShape, []string{"a", "a"}, Config{}); err == nil {
		t.Error("duplicate labels accepted")
	}
}

// TestFeatures checks the pooled statistics on a hand-made latent.
func TestFeatures(t *testing.T) {
	s := codec.Shape{C: 1, H: 2, W: 2}
	e, err := newExtractor(Features{Stats: Mean | Max | Std, Grid: 2, Global: true}, s, 100)
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]float32, e.dim)
	e.extract(dst, []float32{1, 3, 5, 7})
	// Whole plane: mean 4, max 7, std √5; then each cell alone.
	want := []float32{4, 7, float32(math.Sqrt(5)), 1, 1, 0, 3, 3, 0, 5, 5, 0, 7, 7, 0}
	if len(dst) != len(want) {
		t.Fatalf("%d features, want %d", len(dst), len(want))
	}
	for i := range want {
		if math.Abs(float64(dst[i]-want[i])) > 1e-6 {
			t.Fatalf("features %v, want %v", dst, want)
		}
	}
}

// TestConcurrent learns and predicts from several goroutines (run with
// -race): every sample is counted once.
func TestConcurrent(t *testing.T) {
	l := testLearner(t, Config{Buffer: 50, EpochEvery: 20})
	done := make(chan error)
	for g := range 4 {
		go func() {
			rng := rand.New(rand.NewPCG(40, uint64(g)))
			for i := range 50 {
				if err := l.Learn(latentOf(rng, i%3), i%3); err != nil {
					done <- err
					return
				}
				if _, err := l.Predict(latentOf(rng, 0)); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if got := l.Info().Samples; got != 200 {
		t.Fatalf("%d samples counted, want 200", got)
	}
}
