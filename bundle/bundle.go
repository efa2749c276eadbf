package bundle

import (
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"math"
	"os"
	"path/filepath"

	"github.com/splitstream/splitstream/codec"
	"github.com/splitstream/splitstream/entropy"
)

// maxFile bounds the JSON files a bundle may hold (manifest, tables, labels).
const maxFile = 64 << 20

// Bundle is a loaded bundle directory.
type Bundle struct {
	Dir string
	*Manifest
	// ID is the content hash as it travels on the wire.
	ID [32]byte
}

// Load reads and validates dir/manifest.json.
func Load(dir string) (*Bundle, error) {
	b, err := readFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", dir, err)
	}
	m, err := ParseManifest(b)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", dir, err)
	}
	id, _ := m.HashBytes() // validated by ParseManifest
	got, err := ContentHash(dir)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", dir, err)
	}
	if got != id {
		return nil, fmt.Errorf("bundle %s: content hash is sha256:%x but the manifest says %s: the bundle was modified or is incomplete", dir, got, m.Hash)
	}
	return &Bundle{Dir: dir, Manifest: m, ID: id}, nil
}

func readFile(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Size() > maxFile {
		return nil, fmt.Errorf("%s is %d bytes, over %d", path, st.Size(), maxFile)
	}
	return os.ReadFile(path)
}

// Path returns the path of a file of the bundle.
func (b *Bundle) Path(file string) string { return filepath.Join(b.Dir, file) }

// Shape is the shape of what the edge sends: the latent for a split
// bundle, the image for a full one.
func (b *Bundle) Shape() codec.Shape {
	if b.Kind == KindSplit {
		return codec.Shape{C: b.Latent.Channels, H: b.Latent.Height, W: b.Latent.Width}
	}
	return codec.Shape{C: b.Input.Channels, H: b.Input.Height, W: b.Input.Width}
}

// EntropyTables are entropy.json: an EntropyBottleneck's quantized CDFs,
// their lengths and offsets, and the per-channel medians, as CompressAI holds
// them after update().
type EntropyTables struct {
	CDFs       [][]int32 `json:"cdfs"`
	CDFLengths []int32   `json:"cdf_lengths"`
	Offsets    []int32   `json:"offsets"`
	Medians    []float32 `json:"medians"`
}

// ParseEntropy decodes entropy.json and checks it builds a table.
func ParseEntropy(data []byte) (*EntropyTables, *entropy.Table, error) {
	var t EntropyTables
	if err := json.Unmarshal(data, &t); err != nil {
		return nil, nil, fmt.Errorf("entropy tables: %w", err)
	}
	tab, err := entropy.NewTable(t.CDFs, t.CDFLengths, t.Offsets)
	if err != nil {
		return nil, nil, fmt.Errorf("entropy tables: %w", err)
	}
	if len(t.Medians) != len(t.CDFs) {
		return nil, nil, fmt.Errorf("entropy tables: %d medians for %d rows", len(t.Medians), len(t.CDFs))
	}
	return &t, tab, nil
}

// Codec returns the bundle's learned codec, built from its entropy tables.
func (b *Bundle) Codec() (*codec.Learned, error) {
	if b.Kind != KindSplit {
		return nil, fmt.Errorf("bundle %s: a %s bundle has no learned codec", b.Name, b.Kind)
	}
	data, err := readFile(b.Path(b.Entropy.File))
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", b.Name, err)
	}
	t, tab, err := ParseEntropy(data)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", b.Name, err)
	}
	if len(t.Medians) != b.Latent.Channels {
		return nil, fmt.Errorf("bundle %s: entropy tables have %d channels, the latent %d", b.Name, len(t.Medians), b.Latent.Channels)
	}
	l, err := codec.NewLearned(tab, t.Medians)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", b.Name, err)
	}
	return l, nil
}

// Normalize turns pixel values (channel-major RGB, 0..255, of the input
// size) into the encoder's input in place: x = (pixel/scale - mean[c]) / std[c],
// each step rounded to float32 as PyTorch computes it.
func (in *Input) Normalize(t []float32) error {
	plane := in.Height * in.Width
	if len(t) != in.Channels*plane {
		return fmt.Errorf("normalize: %d values for a %dx%dx%d input", len(t), in.Channels, in.Height, in.Width)
	}
	for c := range in.Channels {
		m, s := in.Mean[c], in.Std[c]
		for i := c * plane; i < (c+1)*plane; i++ {
			t[i] = (t[i]/in.Scale - m) / s
		}
	}
	return nil
}

// Pixels returns an image's RGB pixel values, channel-major, at the input
// size: as they are when the image already has that size, otherwise resized
// bilinearly (pixel centres aligned, edges clamped).
func (in *Input) Pixels(dst []float32, img image.Image) []float32 {
	b := img.Bounds()
	if b.Dx() == in.Width && b.Dy() == in.Height {
		return codec.FromImage(dst, img)
	}
	src := codec.FromImage(nil, img)
	sw, sh := b.Dx(), b.Dy()
	w, h := in.Width, in.Height
	if cap(dst) < 3*w*h {
		dst = make([]float32, 3*w*h)
	}
	dst = dst[:3*w*h]
	fx, fy := float64(sw)/float64(w), float64(sh)/float64(h)
	for y := range h {
		sy := math.Max(0, (float64(y)+0.5)*fy-0.5)
		y0 := min(int(sy), sh-1)
		y1 := min(y0+1, sh-1)
		wy := sy - float64(y0)
		for x := range w {
			sx := math.Max(0, (float64(x)+0.5)*fx-0.5)
			x0 := min(int(sx), sw-1)
			x1 := min(x0+1, sw-1)
			wx := sx - float64(x0)
			for c := range 3 {
				p := src[c*sw*sh:]
				top := float64(p[y0*sw+x0])*(1-wx) + float64(p[y0*sw+x1])*wx
				bot := float64(p[y1*sw+x0])*(1-wx) + float64(p[y1*sw+x1])*wx
				dst[c*w*h+y*w+x] = float32(math.Round(top*(1-wy) + bot*wy))
			}
		}
	}
	return dst
}

// ErrNoTestSet is returned by TestSet for a bundle without one.
var ErrNoTestSet = errors.New("bundle has no test set")
