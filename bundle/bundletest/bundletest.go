// Package bundletest writes a small split bundle whose graphs are computed
// by a simple Go engine instead of ONNX files, for tests of the protocol,
// the transport and the server's mechanics (queueing, batching, errors,
// metrics). Tests of model accuracy use the shipped bundles and the real
// engines instead.
//
// The bundle: 16 x 16 RGB input; a 4-channel 4 x 4 latent (each channel a
// scaled 4 x 4 average pool of one input channel); a trunk (features =
// 2 * latent); heads for classification (3 classes: logit k = mean of
// feature channel k), detection (3 classes, stride 4: heatmap k = feature
// channel k - 1, size 2 cells, offset 0.5) and segmentation (4 classes,
// feature channels upsampled x4).
package bundletest

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/splitstream/splitstream/bundle"
	"github.com/splitstream/splitstream/entropy"
	"github.com/splitstream/splitstream/models"
)

// Shape of the bundle.
const (
	Size     = 16 // input side
	Channels = 4  // latent channels
	Side     = 4  // latent side
	Stride   = 4
)

// Labels of the heads.
var (
	Labels     = []string{"red", "green", "blue"}
	MaskLabels = []string{"background", "red", "green", "blue"}
)

// Write writes the bundle into dir (with a content hash that Load accepts)
// and returns its manifest name.
func Write(dir, name string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	medians := []float32{0, 0.25, -0.5, 0.125}
	var cdfs [][]int32
	var lengths, offsets []int32
	for c := range Channels {
		b := 1.5 + float64(c)
		const n = 12
		cdf := func(x float64) float64 {
			if x < 0 {
				return 0.5 * math.Exp(x/b)
			}
			return 1 - 0.5*math.Exp(-x/b)
		}
		var pmf []float32
		var mass float64
		for s := -n; s <= n; s++ {
			p := cdf(float64(s)+0.5) - cdf(float64(s)-0.5)
			mass += p
			pmf = append(pmf, float32(p))
		}
		pmf = append(pmf, float32(1-mass))
		q, err := entropy.PMFToQuantizedCDF(pmf, 16)
		if err != nil {
			return err
		}
		cdfs = append(cdfs, q)
		lengths = append(lengths, int32(len(q)))
		offsets = append(offsets, -n)
	}
	tables, _ := json.Marshal(map[string]any{"cdfs": cdfs, "cdf_lengths": lengths, "offsets": offsets, "medians": medians})
	detect := `{"decoder": "centernet", "stride": 4, "heatmap_activation": "sigmoid", "max_detections": 5, "score_threshold": 0.3, "nms_iou": 0.5, "peak_kernel": 3}`
	lab, _ := json.Marshal(Labels)
	mlab, _ := json.Marshal(MaskLabels)
	manifest := fmt.Sprintf(`{
 "schema_version": 1, "name": %q, "kind": "split",
 "input": {"height": 16, "width": 16, "channels": 3, "layout": "NCHW", "scale": 255.0, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]},
 "latent": {"channels": 4, "height": 4, "width": 4},
 "codec": "factorized-rans-v1",
 "entropy": {"file": "entropy.json", "precision": 16},
 "encoder": {"file": "encoder.onnx", "input": "image", "output": "latent"},
 "cloud": {"layout": "trunk", "trunk": {"file": "trunk.onnx", "input": "latent", "output": "features"}},
 "heads": [
  {"name": "classify", "task": "classification", "file": "head_classify.onnx", "input": "features", "outputs": ["logits"], "labels": %s, "postprocess": {"top_k": 2}},
  {"name": "detect", "task": "detection", "file": "head_detect.onnx", "input": "features", "outputs": ["heatmap", "size", "offset"], "labels": %s, "postprocess": %s},
  {"name": "segment", "task": "segmentation", "file": "head_segment.onnx", "input": "features", "outputs": ["mask_logits"], "labels": %s}
 ],
 "metrics": {"top1": 0, "map50": 0, "miou": 0, "images": 0, "engine": "none"},
 "testset": "",
 "hash": ""
}
`, name, lab, lab, detect, mlab)
	files := map[string][]byte{"entropy.json": tables}
	for _, g := range []string{"encoder", "trunk", "head_classify", "head_detect", "head_segment"} {
		files[g+".onnx"] = []byte("bundletest graph " + g) // opened by Opener, not by an ONNX engine
	}
	files["manifest.json"] = []byte(manifest)
	for n, b := range files {
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o644); err != nil {
			return err
		}
	}
	h, err := bundle.ContentHash(dir)
	if err != nil {
		return err
	}
	sealed := strings.Replace(manifest, `"hash": ""`, `"hash": "sha256:`+hex.EncodeToString(h[:])+`"`, 1)
	return os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(sealed), 0o644)
}

// Engines opens the bundle's graphs as Go engines. Every run sleeps Delay
// first (emulating compute); Runs counts graph runs and Items the images
// they carried.
type Engines struct {
	Delay       time.Duration
	Runs, Items atomic.Int64
}

// Open is a ModelOptions.Open / EncoderOptions.Open function.
func (e *Engines) Open(path string) (models.Engine, error) {
	g := strings.TrimSuffix(filepath.Base(path), ".onnx")
	var in models.TensorInfo
	var outs []models.TensorInfo
	switch g {
	case "encoder":
		in = models.TensorInfo{Name: "image", Shape: []int{-1, 3, Size, Size}}
		outs = []models.TensorInfo{{Name: "latent", Shape: []int{-1, Channels, Side, Side}}}
	case "trunk":
		in = models.TensorInfo{Name: "latent", Shape: []int{-1, Channels, Side, Side}}
		outs = []models.TensorInfo{{Name: "features", Shape: []int{-1, Channels, Side, Side}}}
	case "head_classify":
		in = models.TensorInfo{Name: "features", Shape: []int{-1, Channels, Side, Side}}
		outs = []models.TensorInfo{{Name: "logits", Shape: []int{-1, 3}}}
	case "head_detect":
		in = models.TensorInfo{Name: "features", Shape: []int{-1, Channels, Side, Side}}
		outs = []models.TensorInfo{{Name: "heatmap", Shape: []int{-1, 3, Side, Side}}, {Name: "size", Shape: []int{-1, 2, Side, Side}}, {Name: "offset", Shape: []int{-1, 2, Side, Side}}}
	case "head_segment":
		in = models.TensorInfo{Name: "features", Shape: []int{-1, Channels, Side, Side}}
		outs = []models.TensorInfo{{Name: "mask_logits", Shape: []int{-1, 4, Size, Size}}}
	default:
		return nil, fmt.Errorf("bundletest: no graph %q", g)
	}
	return &engine{e: e, graph: g, in: in, outs: outs}, nil
}

type engine struct {
	e     *Engines
	graph string
	in    models.TensorInfo
	outs  []models.TensorInfo
}

func (g *engine) Inputs() []models.TensorInfo  { return []models.TensorInfo{g.in} }
func (g *engine) Outputs() []models.TensorInfo { return g.outs }
func (g *engine) Close() error                 { return nil }

func (g *engine) Run(ctx context.Context, inputs map[string]models.Tensor) (map[string]models.Tensor, error) {
	x, ok := inputs[g.in.Name]
	if !ok || len(x.Shape) != 4 {
		return nil, fmt.Errorf("bundletest %s: input %q missing or not rank 4", g.graph, g.in.Name)
	}
	n := x.Shape[0]
	for k, d := range g.in.Shape[1:] {
		if x.Shape[k+1] != d {
			return nil, fmt.Errorf("bundletest %s: input shape %v, want %v", g.graph, x.Shape, g.in.Shape)
		}
	}
	if g.e.Delay > 0 {
		select {
		case <-time.After(g.e.Delay):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	g.e.Runs.Add(1)
	g.e.Items.Add(int64(n))
	out := map[string]models.Tensor{}
	alloc := func(name string, dims ...int) []float32 {
		sz := n
		for _, d := range dims {
			sz *= d
		}
		t := models.Tensor{Shape: append([]int{n}, dims...), Data: make([]float32, sz)}
		out[name] = t
		return t.Data
	}
	const lat = Channels * Side * Side
	switch g.graph {
	case "encoder":
		y := alloc("latent", Channels, Side, Side)
		for b := range n {
			img := x.Data[b*3*Size*Size:]
			for c := range Channels {
				for i := range Side * Side {
					yy, xx := i/Side, i%Side
					var sum float32
					for dy := range Stride {
						for dx := range Stride {
							sum += img[(c%3)*Size*Size+(yy*Stride+dy)*Size+xx*Stride+dx]
						}
					}
					y[b*lat+c*Side*Side+i] = sum / 16 * float32(2+c)
				}
			}
		}
	case "trunk":
		f := alloc("features", Channels, Side, Side)
		for i, v := range x.Data {
			f[i] = 2 * v
		}
	case "head_classify":
		l := alloc("logits", 3)
		for b := range n {
			for k := range 3 {
				var sum float32
				for _, v := range x.Data[b*lat+k*Side*Side : b*lat+(k+1)*Side*Side] {
					sum += v
				}
				l[b*3+k] = sum / (Side * Side)
			}
		}
	case "head_detect":
		h := alloc("heatmap", 3, Side, Side)
		s := alloc("size", 2, Side, Side)
		o := alloc("offset", 2, Side, Side)
		for b := range n {
			copy(h[b*3*Side*Side:(b+1)*3*Side*Side], x.Data[b*lat:b*lat+3*Side*Side])
			for i := range h[b*3*Side*Side : (b+1)*3*Side*Side] {
				h[b*3*Side*Side+i] -= 1
			}
		}
		for i := range s {
			s[i], o[i] = 2, 0.5
		}
	case "head_segment":
		m := alloc("mask_logits", 4, Size, Size)
		for b := range n {
			for c := range 4 {
				for y := range Size {
					for xx := range Size {
						m[b*4*Size*Size+c*Size*Size+y*Size+xx] = x.Data[b*lat+c*Side*Side+(y/Stride)*Side+xx/Stride]
					}
				}
			}
		}
	}
	return out, nil
}
