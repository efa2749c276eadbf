// Package tasks turns the raw outputs of task heads into results (top-k
// classes, CenterNet boxes after NMS, segmentation masks) and scores results
// against ground truth (top-1, mAP@0.5, mIoU). The steps and the metric
// definitions are those of docs/BUNDLE.md and train/metrics.py, which the
// bundles' recorded metrics come from; arithmetic on head outputs is float64
// on the float32 values, as there.
package tasks

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"github.com/splitstream/splitstream/wire"
)

// Argmax returns the index of the largest value, the first one on ties.
func Argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// TopK returns the k most probable classes of one image's logits, best first
// (ties: lower index first), with their softmax probabilities.
func TopK(logits []float32, k int) []wire.Class {
	if len(logits) == 0 || k <= 0 {
		return nil
	}
	k = min(k, len(logits))
	m := float64(logits[Argmax(logits)])
	var sum float64
	for _, x := range logits {
		sum += math.Exp(float64(x) - m)
	}
	idx := make([]int, len(logits))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(logits[b], logits[a]) })
	out := make([]wire.Class, k)
	for i, j := range idx[:k] {
		out[i] = wire.Class{Label: uint32(j), Score: float32(math.Exp(float64(logits[j])-m) / sum)}
	}
	return out
}

// DetectParams are the CenterNet decoding parameters of a detection head
// (the manifest's "postprocess").
type DetectParams struct {
	Stride            float64 `json:"stride"`
	HeatmapActivation string  `json:"heatmap_activation"` // "sigmoid" or "none"
	MaxDetections     int     `json:"max_detections"`
	ScoreThreshold    float64 `json:"score_threshold"`
	NMSIoU            float64 `json:"nms_iou"`
	PeakKernel        int     `json:"peak_kernel"`
}

// Check validates the parameters.
func (p *DetectParams) Check() error {
	switch {
	case !(p.Stride > 0):
		return fmt.Errorf("detection stride %v", p.Stride)
	case p.HeatmapActivation != "sigmoid" && p.HeatmapActivation != "none":
		return fmt.Errorf("heatmap activation %q (want sigmoid or none)", p.HeatmapActivation)
	case p.MaxDetections <= 0 || p.MaxDetections > wire.MaxBoxes:
		return fmt.Errorf("max detections %d not in 1..%d", p.MaxDetections, wire.MaxBoxes)
	case p.PeakKernel <= 0 || p.PeakKernel%2 == 0 || p.PeakKernel > 15:
		return fmt.Errorf("peak kernel %d (want odd, 1..15)", p.PeakKernel)
	case math.IsNaN(p.ScoreThreshold) || math.IsNaN(p.NMSIoU):
		return fmt.Errorf("NaN threshold")
	}
	return nil
}

// Detection is one decoded box in input-image pixels.
type Detection struct {
	X0, Y0, X1, Y1 float64
	Class          int
	Score          float64
}

// IoU is the intersection over union of two boxes in continuous coordinates.
func IoU(a, b Detection) float64 {
	iw := math.Min(a.X1, b.X1) - math.Max(a.X0, b.X0)
	ih := math.Min(a.Y1, b.Y1) - math.Max(a.Y0, b.Y0)
	if iw <= 0 || ih <= 0 {
		return 0
	}
	inter := iw * ih
	ua := math.Max(0, a.X1-a.X0)*math.Max(0, a.Y1-a.Y0) + math.Max(0, b.X1-b.X0)*math.Max(0, b.Y1-b.Y0) - inter
	if ua <= 0 {
		return 0
	}
	return inter / ua
}

// CenterNet decodes one image's detection head outputs: heatmap (C, H, W),
// size and offset (2, H, W), in cells. Steps (docs/BUNDLE.md):
//  1. s = sigmoid(heatmap) (or the heatmap itself for activation "none");
//  2. a peak is a cell whose s equals the maximum of its k x k neighbourhood
//     (cells outside the map ignored) and s >= score_threshold;
//  3. peaks sorted by s descending, ties by flat index c*H*W + y*W + x;
//  4. box centre ((x + offset[0]) * stride, (y + offset[1]) * stride), width
//     size[0] * stride, height size[1] * stride;
//  5. greedy per-class NMS: drop a box whose IoU with a kept box of its class
//     exceeds nms_iou;
//  6. keep the first max_detections.
func CenterNet(heat, size, offset []float32, c, h, w int, p DetectParams) ([]Detection, error) {
	plane := h * w
	if c <= 0 || plane <= 0 || len(heat) != c*plane || len(size) != 2*plane || len(offset) != 2*plane {
		return nil, fmt.Errorf("centernet: heatmap %d, size %d, offset %d values for %d classes of %dx%d", len(heat), len(size), len(offset), c, h, w)
	}
	if err := p.Check(); err != nil {
		return nil, fmt.Errorf("centernet: %w", err)
	}
	s := make([]float64, len(heat))
	for i, x := range heat {
		if p.HeatmapActivation == "sigmoid" {
			s[i] = 1 / (1 + math.Exp(-float64(x)))
		} else {
			s[i] = float64(x)
		}
	}
	r := p.PeakKernel / 2
	var peaks []int
	for i, v := range s {
		if !(v >= p.ScoreThreshold) {
			continue
		}
		ch, rem := i/plane, i%plane
		y, x := rem/w, rem%w
		peak := true
		for yy := max(0, y-r); yy <= min(h-1, y+r) && peak; yy++ {
			for xx := max(0, x-r); xx <= min(w-1, x+r); xx++ {
				if s[ch*plane+yy*w+xx] > v {
					peak = false
					break
				}
			}
		}
		if peak {
			peaks = append(peaks, i)
		}
	}
	slices.SortStableFunc(peaks, func(a, b int) int { return cmp.Compare(s[b], s[a]) })
	var out []Detection
	for _, i := range peaks {
		ch, rem := i/plane, i%plane
		y, x := rem/w, rem%w
		cx := (float64(x) + float64(offset[rem])) * p.Stride
		cy := (float64(y) + float64(offset[plane+rem])) * p.Stride
		bw := float64(size[rem]) * p.Stride
		bh := float64(size[plane+rem]) * p.Stride
		d := Detection{X0: cx - bw/2, Y0: cy - bh/2, X1: cx + bw/2, Y1: cy + bh/2, Class: ch, Score: s[i]}
		if slices.ContainsFunc(out, func(o Detection) bool { return o.Class == ch && IoU(o, d) > p.NMSIoU }) {
			continue
		}
		out = append(out, d)
		if len(out) >= p.MaxDetections {
			break
		}
	}
	return out, nil
}

// Boxes converts detections to their wire form (float32).
func Boxes(ds []Detection) []wire.Box {
	out := make([]wire.Box, len(ds))
	for i, d := range ds {
		out[i] = wire.Box{Class: uint32(d.Class), Score: float32(d.Score),
			X0: float32(d.X0), Y0: float32(d.Y0), X1: float32(d.X1), Y1: float32(d.Y1)}
	}
	return out
}

// FromBoxes converts wire boxes back to detections.
func FromBoxes(bs []wire.Box) []Detection {
	out := make([]Detection, len(bs))
	for i, b := range bs {
		out[i] = Detection{X0: float64(b.X0), Y0: float64(b.Y0), X1: float64(b.X1), Y1: float64(b.Y1),
			Class: int(b.Class), Score: float64(b.Score)}
	}
	return out
}

// MaskArgmax returns the class of each pixel of one image's segmentation
// logits (C, H, W): the argmax over classes, the first on ties.
func MaskArgmax(logits []float32, c, h, w int) ([]uint8, error) {
	plane := h * w
	if c <= 0 || c > 256 || plane <= 0 || len(logits) != c*plane {
		return nil, fmt.Errorf("mask: %d logits for %d classes of %dx%d (at most 256 classes)", len(logits), c, h, w)
	}
	out := make([]uint8, plane)
	for i := range plane {
		best, bv := 0, logits[i]
		for ch := 1; ch < c; ch++ {
			if v := logits[ch*plane+i]; v > bv {
				best, bv = ch, v
			}
		}
		out[i] = uint8(best)
	}
	return out, nil
}
