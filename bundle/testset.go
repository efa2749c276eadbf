package bundle

import (
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"slices"

	"github.com/splitstream/splitstream/tasks"
)

// TestSet is a bundle's test set: images with their class label, boxes and
// segmentation mask (labels.json and PNG files in one folder).
type TestSet struct {
	Dir    string
	Labels []string    `json:"labels"`
	Images []TestImage `json:"images"`

	// missing names the ground truth ("label", "boxes", "mask") that at
	// least one image lacks, with the first such image.
	missing map[string]string
}

// TestImage is one test image and its ground truth.
type TestImage struct {
	File  string       `json:"file"`
	Label int          `json:"label"`
	Boxes [][5]float64 `json:"boxes"` // x0, y0, x1, y1 (exclusive), class
	Mask  string       `json:"mask"`  // PNG of 8-bit class indices, 0 = background
}

// GroundTruthBoxes returns the image's boxes for the metrics.
func (t *TestImage) GroundTruthBoxes() []tasks.Box {
	out := make([]tasks.Box, len(t.Boxes))
	for i, b := range t.Boxes {
		out[i] = tasks.Box{X0: b[0], Y0: b[1], X1: b[2], Y1: b[3], Class: int(b[4])}
	}
	return out
}

// maxTestImages bounds the images a test set may list.
const maxTestImages = 1 << 20

// ParseTestSet decodes labels.json and validates it.
func ParseTestSet(data []byte) (*TestSet, error) {
	var t TestSet
	if err := json.Unmarshal(data, &t); err != nil {
		return nil, fmt.Errorf("test set: %w", err)
	}
	if len(t.Labels) == 0 || len(t.Images) == 0 || len(t.Images) > maxTestImages {
		return nil, fmt.Errorf("test set: %d labels, %d images", len(t.Labels), len(t.Images))
	}
	var keys struct {
		Images []map[string]json.RawMessage `json:"images"`
	}
	if err := json.Unmarshal(data, &keys); err != nil {
		return nil, fmt.Errorf("test set: %w", err)
	}
	t.missing = map[string]string{}
	for i, im := range keys.Images {
		for _, k := range []string{"label", "boxes", "mask"} {
			if _, ok := im[k]; !ok && t.missing[k] == "" {
				t.missing[k] = t.Images[i].File
			}
		}
	}
	for i, im := range t.Images {
		if !localFile(im.File) || (im.Mask != "" && !localFile(im.Mask)) {
			return nil, fmt.Errorf("test set: image %d: file %q, mask %q", i, im.File, im.Mask)
		}
		if im.Label < 0 || im.Label >= len(t.Labels) {
			return nil, fmt.Errorf("test set: image %s: label %d of %d", im.File, im.Label, len(t.Labels))
		}
		for _, b := range im.Boxes {
			if c := int(b[4]); c < 0 || c >= len(t.Labels) || float64(c) != b[4] {
				return nil, fmt.Errorf("test set: image %s: box class %v", im.File, b[4])
			}
		}
	}
	return &t, nil
}

// Lacks returns, for each task of m's heads that the test set cannot score,
// what the set lacks for it. Class labels that differ from those of a
// classification or detection head are an error: the set's class indexes
// would mean other classes.
func (t *TestSet) Lacks(m *Manifest) (map[string]string, error) {
	need := map[string]string{TaskClassification: "label", TaskDetection: "boxes", TaskSegmentation: "mask"}
	out := map[string]string{}
	for _, h := range m.Heads {
		key := need[h.Task]
		if file := t.missing[key]; file != "" {
			out[h.Task] = fmt.Sprintf("the test set in %s has no %q for image %s (and maybe others)", t.Dir, key, file)
			continue
		}
		if h.Task != TaskSegmentation && !slices.Equal(h.Labels, t.Labels) {
			return nil, fmt.Errorf("test set %s: its labels %q differ from head %q's %q", t.Dir, t.Labels, h.Name, h.Labels)
		}
	}
	return out, nil
}

// TestSet loads the bundle's test set.
func (b *Bundle) TestSet() (*TestSet, error) {
	if b.Manifest.TestSet == "" {
		return nil, fmt.Errorf("bundle %s: %w", b.Name, ErrNoTestSet)
	}
	dir := filepath.Join(b.Dir, b.Manifest.TestSet)
	return LoadTestSet(dir)
}

// LoadTestSet loads a test set folder.
func LoadTestSet(dir string) (*TestSet, error) {
	data, err := readFile(filepath.Join(dir, "labels.json"))
	if err != nil {
		return nil, err
	}
	t, err := ParseTestSet(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	t.Dir = dir
	return t, nil
}

// Image decodes test image i.
func (t *TestSet) Image(i int) (image.Image, error) {
	return decodePNG(filepath.Join(t.Dir, t.Images[i].File))
}

// Mask decodes the ground-truth mask of test image i: one class index per
// pixel, row-major.
func (t *TestSet) Mask(i int) ([]uint8, int, int, error) {
	path := filepath.Join(t.Dir, t.Images[i].Mask)
	img, err := decodePNG(path)
	if err != nil {
		return nil, 0, 0, err
	}
	g, ok := img.(*image.Gray)
	if !ok {
		return nil, 0, 0, fmt.Errorf("%s: mask is %T, want 8-bit grayscale", path, img)
	}
	w, h := g.Rect.Dx(), g.Rect.Dy()
	out := make([]uint8, 0, w*h)
	for y := range h {
		out = append(out, g.Pix[y*g.Stride:y*g.Stride+w]...)
	}
	return out, w, h, nil
}

func decodePNG(path string) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return img, nil
}
