package learn

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/splitstream/splitstream/codec"
)

// FileName is the model file's name in a learner's directory.
const FileName = "local-model.bin"

// The model file (little-endian): magic "SSLM", version, the bundle's
// content hash, the latent shape, the configuration, the learner's
// counters and random state, the class labels, the feature statistics, the
// weights, the replay buffer, and a CRC-32 (IEEE) of everything before it.
const (
	magic         = "SSLM"
	formatVersion = 1
	pcgStateLen   = 20 // what rand.PCG.MarshalBinary writes
)

// maxCount bounds the step and sample counters a file may claim, far
// from where they would wrap.
const maxCount = 1 << 62

// ErrOtherBundle is returned for a model file trained on another bundle's
// latents.
var ErrOtherBundle = errors.New("learn: the model was trained on another bundle")

// ErrCorrupt marks a model file that does not parse.
var ErrCorrupt = errors.New("learn: corrupt model file")

// Marshal returns the learner's state as a model file.
func (l *Learner) Marshal() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	c, f, m := l.cfg, l.cfg.Features, l.model
	b := []byte(magic)
	le := binary.LittleEndian
	b = le.AppendUint16(b, formatVersion)
	b = append(b, l.bundle[:]...)
	for _, v := range []int{l.shape.C, l.shape.H, l.shape.W} {
		b = le.AppendUint32(b, uint32(v))
	}
	b = append(b, byte(c.Model), byte(f.Stats), byte(f.Grid), boolByte(f.Global), byte(f.Kernel))
	b = le.AppendUint32(b, uint32(f.Filters))
	b = le.AppendUint64(b, f.Seed)
	for _, v := range []float64{c.Lambda, c.LearningRate} {
		b = le.AppendUint64(b, math.Float64bits(v))
	}
	for _, v := range []int{c.Buffer, c.EpochEvery, c.Epochs} {
		b = le.AppendUint32(b, uint32(v))
	}
	b = le.AppendUint32(b, math.Float32bits(c.MinScore))
	b = le.AppendUint64(b, c.Seed)
	b = le.AppendUint64(b, l.seen)
	b = le.AppendUint32(b, uint32(l.since))
	b = le.AppendUint64(b, uint64(l.spent))
	b, _ = l.pcg.AppendBinary(b) // never fails
	b = le.AppendUint64(b, m.t)
	b = le.AppendUint64(b, math.Float64bits(m.scale))
	b = le.AppendUint64(b, math.Float64bits(m.sqnorm))
	b = le.AppendUint32(b, uint32(len(l.labels)))
	for _, s := range l.labels {
		b = le.AppendUint16(b, uint16(len(s)))
		b = append(b, s...)
	}
	b = le.AppendUint64(b, l.stats.n)
	for _, v := range l.stats.mean {
		b = le.AppendUint64(b, math.Float64bits(v))
	}
	for _, v := range l.stats.m2 {
		b = le.AppendUint64(b, math.Float64bits(v))
	}
	for _, v := range m.v {
		b = le.AppendUint32(b, math.Float32bits(v))
	}
	b = le.AppendUint32(b, uint32(l.buf.len()))
	b = le.AppendUint64(b, l.buf.offered)
	for _, v := range l.buf.x {
		b = le.AppendUint32(b, math.Float32bits(v))
	}
	for _, v := range l.buf.y {
		b = le.AppendUint16(b, v)
	}
	return le.AppendUint32(b, crc32.ChecksumIEEE(b))
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// reader reads fields off a model file, remembering the first shortfall.
type reader struct {
	b   []byte
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.err = fmt.Errorf("%w: truncated", ErrCorrupt)
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) u8() byte {
	if p := r.take(1); p != nil {
		return p[0]
	}
	return 0
}

func (r *reader) u16() uint16 {
	if p := r.take(2); p != nil {
		return binary.LittleEndian.Uint16(p)
	}
	return 0
}

func (r *reader) u32() uint32 {
	if p := r.take(4); p != nil {
		return binary.LittleEndian.Uint32(p)
	}
	return 0
}

func (r *reader) u64() uint64 {
	if p := r.take(8); p != nil {
		return binary.LittleEndian.Uint64(p)
	}
	return 0
}

func (r *reader) f64() float64 { return math.Float64frombits(r.u64()) }

// count reads a uint32 count of items of size bytes each and checks it
// against bound and against the bytes left, before anything is allocated.
func (r *reader) count(what string, bound, size int) int {
	n := int(r.u32())
	if r.err == nil && (n > bound || n*size > len(r.b)) {
		r.err = fmt.Errorf("%w: %d %s (at most %d, %d bytes left)", ErrCorrupt, n, what, bound, len(r.b))
	}
	if r.err != nil {
		return 0
	}
	return n
}

func (r *reader) f32s(dst []float32) {
	p := r.take(4 * len(dst))
	if p == nil {
		return
	}
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(p[4*i:]))
		if math.IsNaN(float64(dst[i])) || math.IsInf(float64(dst[i]), 0) {
			r.err = fmt.Errorf("%w: value %v", ErrCorrupt, dst[i])
			return
		}
	}
}

func (r *reader) f64s(dst []float64) {
	for i := range dst {
		dst[i] = r.f64()
		if math.IsNaN(dst[i]) || math.IsInf(dst[i], 0) {
			if r.err == nil {
				r.err = fmt.Errorf("%w: value %v", ErrCorrupt, dst[i])
			}
			return
		}
	}
}

// Unmarshal parses a model file for the bundle with content hash bundleID
// and latents of shape s. The file's configuration is the model's; limits
// supplies the bounds (MaxClasses, MaxFeatures, Buffer: a file with a larger
// buffer is refused). Nothing is allocated from a size in the file beyond
// those bounds and the file's own length.
func Unmarshal(data []byte, bundleID [32]byte, s codec.Shape, limits Config) (*Learner, error) {
	lim := limits.withDefaults()
	if len(data) < len(magic)+2+4 || string(data[:len(magic)]) != magic {
		return nil, fmt.Errorf("%w: not a model file", ErrCorrupt)
	}
	body, sum := data[:len(data)-4], binary.LittleEndian.Uint32(data[len(data)-4:])
	r := &reader{b: body[len(magic):]}
	if v := r.u16(); v != formatVersion {
		return nil, fmt.Errorf("%w: format version %d, this build reads %d", ErrCorrupt, v, formatVersion)
	}
	if crc32.ChecksumIEEE(body) != sum {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	var id [32]byte
	copy(id[:], r.take(32))
	if r.err == nil && id != bundleID {
		return nil, fmt.Errorf("%w: bundle sha256:%x, this one is sha256:%x", ErrOtherBundle, id, bundleID)
	}
	got := codec.Shape{C: int(r.u32()), H: int(r.u32()), W: int(r.u32())}
	if r.err == nil && got != s {
		return nil, fmt.Errorf("%w: tensors of shape %v, this learner takes %v", ErrCorrupt, got, s)
	}
	var c Config
	c.Model = Model(r.u8())
	c.Features.Stats = Stat(r.u8())
	c.Features.Grid = int(r.u8())
	global := r.u8()
	c.Features.Global = global == 1
	c.Features.Kernel = int(r.u8())
	c.Features.Filters = int(r.u32())
	c.Features.Seed = r.u64()
	c.Lambda, c.LearningRate = r.f64(), r.f64()
	c.Buffer, c.EpochEvery, c.Epochs = int(r.u32()), int(r.u32()), int(r.u32())
	c.MinScore = math.Float32frombits(r.u32())
	c.Seed = r.u64()
	c.MaxClasses, c.MaxFeatures = lim.MaxClasses, lim.MaxFeatures
	seen, since, spent := r.u64(), int(r.u32()), time.Duration(r.u64())
	pcgState := r.take(pcgStateLen)
	t, scale, sqnorm := r.u64(), r.f64(), r.f64()
	if r.err != nil {
		return nil, r.err
	}
	if err := c.check(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if c.Buffer > lim.Buffer || global > 1 {
		return nil, fmt.Errorf("%w: buffer of %d (at most %d), global %d", ErrCorrupt, c.Buffer, lim.Buffer, global)
	}
	feat, err := newExtractor(c.Features, s, c.MaxFeatures)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if !(scale > 0 && scale <= 1) || !(sqnorm >= 0) || math.IsInf(sqnorm, 0) || since < 0 || since >= c.EpochEvery || spent < 0 || t > maxCount || seen > maxCount {
		return nil, fmt.Errorf("%w: scale %v, norm %v, %d since replay, %v spent", ErrCorrupt, scale, sqnorm, since, spent)
	}
	l := &Learner{cfg: c, bundle: bundleID, shape: s, feat: feat, seen: seen, since: since, spent: spent}
	l.pcg = &rand.PCG{}
	if err := l.pcg.UnmarshalBinary(pcgState); err != nil {
		return nil, fmt.Errorf("%w: random state: %v", ErrCorrupt, err)
	}
	k := r.count("classes", c.MaxClasses, 3)
	for range k {
		n := int(r.u16())
		name := string(r.take(n))
		if r.err != nil {
			return nil, r.err
		}
		l.labels = append(l.labels, name)
	}
	if r.err == nil && k == 0 {
		r.err = fmt.Errorf("%w: no classes", ErrCorrupt)
	}
	if r.err == nil {
		if err := checkLabels(l.labels); err != nil {
			r.err = fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
	}
	dim := feat.dim
	// What follows has a size fixed by k, dim and the buffer's length:
	// check it before allocating any of it.
	if need := 8 + 16*dim + 4*k*(dim+1); r.err == nil && len(r.b) < need {
		r.err = fmt.Errorf("%w: truncated", ErrCorrupt)
	}
	if r.err != nil {
		return nil, r.err
	}
	l.stats = newRunningStats(dim)
	l.stats.n = r.u64()
	r.f64s(l.stats.mean)
	r.f64s(l.stats.m2)
	l.model = newLinear(c.Model, k, dim+1, c.Lambda, c.LearningRate)
	l.model.t, l.model.scale, l.model.sqnorm = t, scale, sqnorm
	r.f32s(l.model.v)
	n := r.count("buffered samples", c.Buffer, 4*dim+2)
	l.buf = newReservoir(c.Buffer, dim)
	l.buf.offered = r.u64()
	l.buf.x = l.buf.x[:n*dim]
	r.f32s(l.buf.x)
	for range n {
		y := r.u16()
		if r.err == nil && int(y) >= k {
			r.err = fmt.Errorf("%w: buffered class %d of %d", ErrCorrupt, y, k)
		}
		l.buf.y = append(l.buf.y, y)
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the buffer", ErrCorrupt, len(r.b))
	}
	for _, v := range l.stats.m2 {
		if v < 0 {
			return nil, fmt.Errorf("%w: negative variance", ErrCorrupt)
		}
	}
	if l.buf.offered < uint64(n) || l.stats.n > seen {
		return nil, fmt.Errorf("%w: counters", ErrCorrupt)
	}
	l.init()
	return l, nil
}

// Save writes the learner's model file into dir atomically: a temporary
// file in dir, synced, then renamed over FileName.
func (l *Learner) Save(dir string) error {
	data := l.Marshal()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("learn: save: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+FileName+".tmp-*")
	if err != nil {
		return fmt.Errorf("learn: save: %w", err)
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(dir, FileName))
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("learn: save: %w", err)
	}
	if d, err := os.Open(dir); err == nil { // make the rename durable
		d.Sync()
		d.Close()
	}
	return nil
}

// maxFileBytes is the largest model file the bounds of cfg (defaults
// applied) allow.
func maxFileBytes(cfg Config) int64 {
	k, d, n := int64(cfg.MaxClasses), int64(cfg.MaxFeatures), int64(cfg.Buffer)
	return 4096 + k*(2+maxLabel) + 16*d + 4*k*(d+1) + n*(4*d+2)
}

// Load reads dir's model file for the bundle with content hash bundleID and
// latents of shape s, within the bounds of limits (see Unmarshal). A file
// larger than those bounds allow is refused before it is read.
func Load(dir string, bundleID [32]byte, s codec.Shape, limits Config) (*Learner, error) {
	path := filepath.Join(dir, FileName)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("learn: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("learn: %w", err)
	}
	if limit := maxFileBytes(limits.withDefaults()); st.Size() > limit {
		return nil, fmt.Errorf("learn: %s is %d bytes, over the %d its bounds allow", path, st.Size(), limit)
	}
	data := make([]byte, st.Size())
	if _, err := f.ReadAt(data, 0); err != nil {
		return nil, fmt.Errorf("learn: %s: %w", path, err)
	}
	l, err := Unmarshal(data, bundleID, s, limits)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return l, nil
}

// Open loads dir's model file if there is one (see Load), and otherwise
// returns New(bundleID, s, labels, cfg): the edge agent's --learn DIR keeps
// learning where it stopped.
func Open(dir string, bundleID [32]byte, s codec.Shape, labels []string, cfg Config) (*Learner, error) {
	l, err := Load(dir, bundleID, s, cfg)
	if errors.Is(err, fs.ErrNotExist) {
		return New(bundleID, s, labels, cfg)
	}
	return l, err
}
