package learn

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/splitstream/splitstream/codec"
)

// Config configures a Learner. The zero value of every field means its
// default.
type Config struct {
	// Model is Pegasos (default) or Logistic.
	Model Model
	// Features turn a tensor into the feature vector (DefaultFeatures).
	Features Features
	// Lambda is the L2 regularisation strength λ. Default 1e-3 for
	// Pegasos, 1e-4 for Logistic.
	Lambda float64
	// LearningRate is Logistic's initial step η₀. Default 0.3.
	LearningRate float64
	// Buffer is the replay buffer's capacity in samples; the buffer holds
	// Buffer x (features x 4 + 2) bytes. Default 2000.
	Buffer int
	// EpochEvery is how many new samples pass between replays of the
	// buffer. Default 250.
	EpochEvery int
	// Epochs is how many passes over the buffer, in random order, a replay
	// makes. Default 2.
	Epochs int
	// MinScore is the cloud score (softmax probability of its top-1) a
	// cloud reply needs to become a label (LearnCloud). Default 0.5; a tiny
	// positive value takes every reply.
	MinScore float32
	// MaxClasses bounds the classes (the cloud's and those that user
	// labels add). Default 256, at most 65536.
	MaxClasses int
	// MaxFeatures bounds the feature dimension. Default 4096.
	MaxFeatures int
	// Seed seeds the replay order and the reservoir's draws.
	Seed uint64
}

func (c Config) withDefaults() Config {
	if c.Model == 0 {
		c.Model = Pegasos
	}
	c.Features = c.Features.withDefaults()
	def := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	defInt := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	if c.Model == Pegasos {
		def(&c.Lambda, 1e-3)
	} else {
		def(&c.Lambda, 1e-4)
	}
	def(&c.LearningRate, 0.3)
	defInt(&c.Buffer, 2000)
	defInt(&c.EpochEvery, 250)
	defInt(&c.Epochs, 2)
	defInt(&c.MaxClasses, 256)
	defInt(&c.MaxFeatures, 4096)
	if c.MinScore == 0 {
		c.MinScore = 0.5
	}
	return c
}

// maxBuffer bounds Config.Buffer (16 Mi samples).
const maxBuffer = 1 << 24

func (c Config) check() error {
	switch {
	case c.Model != Pegasos && c.Model != Logistic:
		return fmt.Errorf("learn: model %v", c.Model)
	case !(c.Lambda > 0 && c.Lambda < 1e3) || !(c.LearningRate > 0 && c.LearningRate < 1e3):
		return fmt.Errorf("learn: lambda %v, learning rate %v", c.Lambda, c.LearningRate)
	case c.Buffer < 1 || c.Buffer > maxBuffer || c.EpochEvery < 1 || c.Epochs < 1 || c.Epochs > 1000:
		return fmt.Errorf("learn: buffer %d, epoch every %d, epochs %d", c.Buffer, c.EpochEvery, c.Epochs)
	case c.MaxClasses < 1 || c.MaxClasses > 1<<16 || c.MaxFeatures < 1 || c.MaxFeatures > 1<<20:
		return fmt.Errorf("learn: max classes %d, max features %d", c.MaxClasses, c.MaxFeatures)
	case !(c.MinScore >= 0 && c.MinScore <= 1):
		return fmt.Errorf("learn: min score %v", c.MinScore)
	}
	return nil
}

// Learner is an incremental linear classifier of tensors of one shape
// made from one bundle's latents. It is safe for concurrent use.
type Learner struct {
	mu     sync.Mutex
	cfg    Config
	bundle [32]byte
	shape  codec.Shape
	labels []string
	feat   *extractor
	stats  runningStats
	model  *linear
	buf    reservoir
	pcg    *rand.PCG
	rng    *rand.Rand
	seen   uint64        // samples learned
	since  int           // samples since the last replay
	spent  time.Duration // in learn, replays included
	f, z   []float32
	scores []float32
	perm   []int32
}

// ErrLatent marks a tensor that does not fit the learner.
var ErrLatent = errors.New("learn: tensor does not fit")

// New returns an untrained learner for tensors of shape s (the dequantised
// latent, or the trunk's features) of the bundle with content hash
// bundleID, with the given class labels (the cloud's classification
// head's; user labels may add more).
func New(bundleID [32]byte, s codec.Shape, labels []string, cfg Config) (*Learner, error) {
	cfg = cfg.withDefaults()
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if len(labels) == 0 || len(labels) > cfg.MaxClasses {
		return nil, fmt.Errorf("learn: %d classes (at most %d)", len(labels), cfg.MaxClasses)
	}
	if err := checkLabels(labels); err != nil {
		return nil, err
	}
	feat, err := newExtractor(cfg.Features, s, cfg.MaxFeatures)
	if err != nil {
		return nil, err
	}
	l := &Learner{cfg: cfg, bundle: bundleID, shape: s, labels: slices.Clone(labels), feat: feat}
	l.stats = newRunningStats(feat.dim)
	l.model = newLinear(cfg.Model, len(labels), feat.dim+1, cfg.Lambda, cfg.LearningRate)
	l.buf = newReservoir(cfg.Buffer, feat.dim)
	l.pcg = rand.NewPCG(cfg.Seed, 1)
	l.init()
	return l, nil
}

// init allocates the scratch space.
func (l *Learner) init() {
	l.rng = rand.New(l.pcg)
	l.f = make([]float32, l.feat.dim)
	l.z = make([]float32, l.feat.dim+1)
	l.perm = make([]int32, 0, l.buf.capacity)
}

// maxLabel bounds a class label's length in bytes.
const maxLabel = 256

func checkLabel(s string) error {
	if s == "" || len(s) > maxLabel {
		return fmt.Errorf("learn: class label of %d bytes (1 to %d)", len(s), maxLabel)
	}
	return nil
}

func checkLabels(labels []string) error {
	seen := make(map[string]bool, len(labels))
	for _, s := range labels {
		if err := checkLabel(s); err != nil {
			return err
		}
		if seen[s] {
			return fmt.Errorf("learn: class label %q twice", s)
		}
		seen[s] = true
	}
	return nil
}

// features extracts the features of tensor y into l.f.
func (l *Learner) features(y []float32) error {
	if len(y) != l.shape.Len() {
		return fmt.Errorf("%w: %d values, the learner takes %v", ErrLatent, len(y), l.shape)
	}
	for _, v := range y {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("%w: it holds %v", ErrLatent, v)
		}
	}
	l.feat.extract(l.f, y)
	return nil
}

// Learn takes one labelled sample: tensor y of class index class. It updates the feature
// statistics, takes one step on the sample, keeps it in the replay buffer,
// and every EpochEvery samples replays the buffer Epochs times.
func (l *Learner) Learn(y []float32, class int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.learn(y, class)
}

func (l *Learner) learn(y []float32, class int) error {
	start := time.Now()
	defer func() { l.spent += time.Since(start) }()
	if class < 0 || class >= len(l.labels) {
		return fmt.Errorf("learn: class %d of %d", class, len(l.labels))
	}
	if err := l.features(y); err != nil {
		return err
	}
	l.stats.add(l.f)
	l.stats.standardize(l.z, l.f)
	l.model.step(l.z, class)
	l.buf.add(l.f, class, l.rng)
	l.seen++
	l.since++
	if l.since >= l.cfg.EpochEvery {
		l.replay()
	}
	return nil
}

// replay makes Epochs passes over the buffer, each in a fresh random order.
func (l *Learner) replay() {
	l.since = 0
	n := l.buf.len()
	for range l.cfg.Epochs {
		l.perm = l.perm[:0]
		for i := range n {
			l.perm = append(l.perm, int32(i))
		}
		l.rng.Shuffle(n, func(i, j int) { l.perm[i], l.perm[j] = l.perm[j], l.perm[i] })
		for _, i := range l.perm {
			x, c := l.buf.at(int(i))
			l.stats.standardize(l.z, x)
			l.model.step(l.z, c)
		}
	}
}

// LearnCloud learns from the cloud's classification of tensor y: its top-1
// class index and that class's score (softmax probability). It learns only
// when the score is at least MinScore (the cloud head is the teacher, and
// only its confident answers are taken) and reports whether it did.
func (l *Learner) LearnCloud(y []float32, top1 int, score float32) (bool, error) {
	if !(score >= l.cfg.MinScore) {
		return false, nil
	}
	if err := l.Learn(y, top1); err != nil {
		return false, err
	}
	return true, nil
}

// LearnLabel learns tensor y under a class name given by the user; a name
// the learner does not know yet becomes a new class, up to MaxClasses.
func (l *Learner) LearnLabel(y []float32, name string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := slices.Index(l.labels, name)
	if c < 0 {
		if err := checkLabel(name); err != nil {
			return err
		}
		if len(l.labels) >= l.cfg.MaxClasses {
			return fmt.Errorf("learn: class %q would be class %d, over the bound of %d", name, len(l.labels)+1, l.cfg.MaxClasses)
		}
		l.labels = append(l.labels, name)
		l.model.addClass()
		c = len(l.labels) - 1
	}
	return l.learn(y, c)
}

// Prediction is the local model's answer for one tensor.
type Prediction struct {
	Class int
	Label string
	// Score is the softmax probability of the class for Logistic and its
	// decision value w·x for Pegasos.
	Score float32
}

// Predict classifies tensor y.
func (l *Learner) Predict(y []float32) (Prediction, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.features(y); err != nil {
		return Prediction{}, err
	}
	l.stats.standardize(l.z, l.f)
	s := l.model.scores(l.scores, l.z)
	l.scores = s
	best := 0
	for c, v := range s {
		if v > s[best] {
			best = c
		}
	}
	p := Prediction{Class: best, Label: l.labels[best], Score: s[best]}
	if l.cfg.Model == Logistic {
		var z float64
		for _, v := range s {
			z += math.Exp(float64(v - s[best]))
		}
		p.Score = float32(1 / z)
	}
	return p, nil
}

// Info describes a learner.
type Info struct {
	Model    Model
	Features Features
	Dim      int      // features per sample (without the bias)
	Labels   []string // the classes, in index order
	Samples  uint64   // samples learned
	Buffered int      // samples in the replay buffer
	// Spent is the time spent learning (feature extraction, steps and
	// replays), over every session that trained the model.
	Spent time.Duration
	// Bytes is the memory the learner's state takes at its buffer's
	// capacity: buffer, weights, feature statistics, filters and their
	// scratch space.
	Bytes int
}

// Info returns the learner's description.
func (l *Learner) Info() Info {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.feat
	feat := 4 * (len(e.w) + len(e.border) + len(e.base) + len(e.acc) + len(e.resp) + len(e.bg))
	return Info{
		Model: l.cfg.Model, Features: l.cfg.Features, Dim: l.feat.dim,
		Labels: slices.Clone(l.labels), Samples: l.seen, Buffered: l.buf.len(), Spent: l.spent,
		Bytes: l.buf.bytes() + 4*len(l.model.v) + 16*e.dim + feat,
	}
}

// Bundle is the content hash of the bundle the learner's tensors come from.
func (l *Learner) Bundle() [32]byte { return l.bundle }
