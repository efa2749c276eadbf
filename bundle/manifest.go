// Package bundle loads a model bundle: its manifest (schema, input
// normalisation, latent shape, codec, entropy tables, graphs, heads with their
// labels and post-processing, the metrics recorded at export, the content
// hash), the entropy tables and the bundle's test set. docs/BUNDLE.md is the
// format's specification.
package bundle

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/splitstream/splitstream/tasks"
)

// SchemaVersion is the manifest schema this package reads.
const SchemaVersion = 1

// Bundle kinds.
const (
	KindSplit = "split" // encoder on the edge, heads on the cloud
	KindFull  = "full"  // image in, task outputs out (the teacher)
)

// Head tasks.
const (
	TaskClassification = "classification"
	TaskDetection      = "detection"
	TaskSegmentation   = "segmentation"
)

// Manifest is manifest.json.
type Manifest struct {
	SchemaVersion int         `json:"schema_version"`
	Name          string      `json:"name"`
	Kind          string      `json:"kind"`
	Input         Input       `json:"input"`
	Latent        *Latent     `json:"latent,omitempty"`
	Codec         string      `json:"codec,omitempty"`
	Entropy       *EntropyRef `json:"entropy,omitempty"`
	Encoder       *Graph      `json:"encoder,omitempty"`
	Cloud         Cloud       `json:"cloud"`
	Heads         []Head      `json:"heads"`
	Metrics       Metrics     `json:"metrics"`
	TestSet       string      `json:"testset"`
	Hash          string      `json:"hash"`
}

// Input says how an image becomes the encoder's input tensor:
// x = (pixel/scale - mean[c]) / std[c], in the given layout.
type Input struct {
	Height   int       `json:"height"`
	Width    int       `json:"width"`
	Channels int       `json:"channels"`
	Layout   string    `json:"layout"`
	Scale    float32   `json:"scale"`
	Mean     []float32 `json:"mean"`
	Std      []float32 `json:"std"`
}

// Latent is the shape of the encoder's output, without the batch dimension.
type Latent struct {
	Channels int `json:"channels"`
	Height   int `json:"height"`
	Width    int `json:"width"`
}

// EntropyRef names the entropy tables file.
type EntropyRef struct {
	File      string `json:"file"`
	Precision int    `json:"precision"`
}

// Graph names an ONNX graph of the bundle with its input and output.
type Graph struct {
	File   string `json:"file"`
	Input  string `json:"input"`
	Output string `json:"output"`
}

// Cloud says how the cloud side is laid out: one graph per head on the
// latent, or a shared trunk that runs once and light heads on its features.
type Cloud struct {
	Layout string `json:"layout"` // "per-head" or "trunk"
	Trunk  *Graph `json:"trunk,omitempty"`
}

// Head is one task head.
type Head struct {
	Name        string          `json:"name"`
	Task        string          `json:"task"`
	File        string          `json:"file"`
	Input       string          `json:"input"` // "latent", "features" or "image"
	Outputs     []string        `json:"outputs"`
	Labels      []string        `json:"labels"`
	Postprocess json.RawMessage `json:"postprocess,omitempty"`

	// Parsed post-processing parameters.
	TopK   int                 `json:"-"`
	Detect *tasks.DetectParams `json:"-"`
}

// Metrics are the metrics recorded at export.
type Metrics struct {
	Top1                 float64 `json:"top1"`
	MAP50                float64 `json:"map50"`
	MIoU                 float64 `json:"miou"`
	BytesPerImage        float64 `json:"bytes_per_image"`
	JPEGQ90BytesPerImage float64 `json:"jpeg_q90_bytes_per_image"`
	Images               int     `json:"images"`
	Engine               string  `json:"engine"`
}

// Limits on what a manifest may declare.
const (
	maxDim    = 4096
	maxLabels = 256
	maxHeads  = 16
)

// DefaultTopK is the top-k of a classification head whose manifest says none.
const DefaultTopK = 5

// ParseManifest decodes and validates manifest.json.
func ParseManifest(b []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if err := m.validate(); err != nil {
		return nil, fmt.Errorf("manifest %q: %w", m.Name, err)
	}
	return &m, nil
}

func okDim(d int) bool { return d > 0 && d <= maxDim }

// localFile reports whether name is a plain file name inside the bundle.
func localFile(name string) bool {
	return name != "" && !strings.ContainsAny(name, `/\`) && name != "." && name != ".."
}

func (m *Manifest) validate() error {
	if m.SchemaVersion != SchemaVersion {
		return fmt.Errorf("schema version %d, this build reads %d", m.SchemaVersion, SchemaVersion)
	}
	in := m.Input
	if !okDim(in.Height) || !okDim(in.Width) || in.Channels != 3 {
		return fmt.Errorf("input %dx%dx%d (want 3 channels, sides 1..%d)", in.Channels, in.Height, in.Width, maxDim)
	}
	if in.Layout != "NCHW" {
		return fmt.Errorf("input layout %q (want NCHW)", in.Layout)
	}
	if !(in.Scale > 0) || len(in.Mean) != 3 || len(in.Std) != 3 {
		return errors.New("input normalisation needs a positive scale and 3 means and stds")
	}
	for c := range 3 {
		if !finite(in.Mean[c]) || !(in.Std[c] > 0) || !finite(in.Std[c]) {
			return fmt.Errorf("input mean/std of channel %d: %v / %v", c, in.Mean[c], in.Std[c])
		}
	}
	switch m.Kind {
	case KindSplit:
		if m.Latent == nil || !okDim(m.Latent.Channels) || !okDim(m.Latent.Height) || !okDim(m.Latent.Width) {
			return errors.New("split bundle without a valid latent shape")
		}
		if m.Codec != "factorized-rans-v1" {
			return fmt.Errorf("codec %q (want factorized-rans-v1)", m.Codec)
		}
		if m.Entropy == nil || !localFile(m.Entropy.File) || m.Entropy.Precision != 16 {
			return errors.New("split bundle needs an entropy file with precision 16")
		}
		if m.Encoder == nil || !localFile(m.Encoder.File) || m.Encoder.Input == "" || m.Encoder.Output == "" {
			return errors.New("split bundle needs an encoder graph with input and output names")
		}
	case KindFull:
	default:
		return fmt.Errorf("kind %q (want split or full)", m.Kind)
	}
	switch m.Cloud.Layout {
	case "per-head", "":
		m.Cloud.Layout = "per-head"
	case "trunk":
		t := m.Cloud.Trunk
		if t == nil || !localFile(t.File) || t.Input == "" || t.Output == "" {
			return errors.New("trunk layout without a trunk graph")
		}
	default:
		return fmt.Errorf("cloud layout %q (want per-head or trunk)", m.Cloud.Layout)
	}
	if len(m.Heads) == 0 || len(m.Heads) > maxHeads {
		return fmt.Errorf("%d heads (want 1..%d)", len(m.Heads), maxHeads)
	}
	seen := map[string]bool{}
	for i := range m.Heads {
		h := &m.Heads[i]
		if err := m.validateHead(h); err != nil {
			return fmt.Errorf("head %q: %w", h.Name, err)
		}
		if seen[h.Task] {
			return fmt.Errorf("two heads for task %q", h.Task)
		}
		seen[h.Task] = true
	}
	if _, err := m.HashBytes(); err != nil {
		return err
	}
	return nil
}

func (m *Manifest) validateHead(h *Head) error {
	if h.Name == "" || !localFile(h.File) || len(h.Outputs) == 0 {
		return errors.New("needs a name, a graph file and outputs")
	}
	if len(h.Labels) == 0 || len(h.Labels) > maxLabels {
		return fmt.Errorf("%d labels (want 1..%d)", len(h.Labels), maxLabels)
	}
	switch h.Input {
	case "latent":
		if m.Kind != KindSplit {
			return errors.New("input latent in a full bundle")
		}
	case "features":
		if m.Cloud.Layout != "trunk" {
			return errors.New("input features without a trunk")
		}
	case "image":
		if m.Kind != KindFull {
			return errors.New("input image in a split bundle")
		}
	default:
		return fmt.Errorf("input %q (want latent, features or image)", h.Input)
	}
	switch h.Task {
	case TaskClassification:
		var p struct {
			TopK int `json:"top_k"`
		}
		if err := unmarshalOptional(h.Postprocess, &p); err != nil {
			return err
		}
		h.TopK = p.TopK
		if h.TopK == 0 {
			h.TopK = DefaultTopK
		}
		if h.TopK < 0 {
			return fmt.Errorf("top_k %d", h.TopK)
		}
		h.TopK = min(h.TopK, len(h.Labels))
		if len(h.Outputs) != 1 {
			return errors.New("classification needs one output (logits)")
		}
	case TaskDetection:
		var p struct {
			tasks.DetectParams
			Decoder string `json:"decoder"`
		}
		if err := unmarshalOptional(h.Postprocess, &p); err != nil {
			return err
		}
		if p.Decoder != "centernet" {
			return fmt.Errorf("detection decoder %q (want centernet)", p.Decoder)
		}
		if err := p.DetectParams.Check(); err != nil {
			return err
		}
		h.Detect = &p.DetectParams
		if len(h.Outputs) != 3 {
			return errors.New("detection needs three outputs (heatmap, size, offset)")
		}
	case TaskSegmentation:
		if len(h.Outputs) != 1 {
			return errors.New("segmentation needs one output (mask logits)")
		}
	default:
		return fmt.Errorf("task %q", h.Task)
	}
	return nil
}

func unmarshalOptional(raw json.RawMessage, v any) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("postprocess: %w", err)
	}
	return nil
}

func finite(f float32) bool { return !math.IsNaN(float64(f)) && !math.IsInf(float64(f), 0) }

// HashBytes returns the manifest's content hash ("sha256:<64 hex digits>")
// as the 32 bytes that travel in every request.
func (m *Manifest) HashBytes() ([32]byte, error) {
	var h [32]byte
	hexs, ok := strings.CutPrefix(m.Hash, "sha256:")
	if !ok || len(hexs) != 64 {
		return h, fmt.Errorf("hash %q is not sha256:<64 hex digits>", m.Hash)
	}
	if _, err := hex.Decode(h[:], []byte(hexs)); err != nil {
		return h, fmt.Errorf("hash %q: %w", m.Hash, err)
	}
	return h, nil
}

// Head returns the head for a task, or nil.
func (m *Manifest) Head(task string) *Head {
	for i := range m.Heads {
		if m.Heads[i].Task == task {
			return &m.Heads[i]
		}
	}
	return nil
}
