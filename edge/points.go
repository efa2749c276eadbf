package edge

import (
	"fmt"

	"github.com/splitstream/splitstream/bundle"
	"github.com/splitstream/splitstream/codec"
	"github.com/splitstream/splitstream/edge/policy"
)

// This file names and ranks operating points, for the agent's adaptive
// policy and for the trace bench (bench/trace), so that both rank a point
// the same way and a record names it as a bench row does.

// Point is one operating point the edge holds.
type Point struct {
	Name string
	// Bundle answers the point: the split bundle of a learned point, the
	// full bundle of an image offload, the model on the device of a local
	// point.
	Bundle *bundle.Bundle
	// Codec is what the edge sends with; nil for the bundle's own (the
	// learned codec) and for a local point.
	Codec codec.Codec
	// Local is true when the device answers: nothing is sent.
	Local bool
	// Accuracy ranks the point (RankAccuracy).
	Accuracy float64
}

// ImagePointName names the point that sends the image with an image codec
// at quality q: "png", "jpeg-q50", "webp-q90".
func ImagePointName(id codec.ID, q int) string {
	if id == codec.IDPNG {
		return "png"
	}
	return fmt.Sprintf("%v-q%d", id, q)
}

// LearnedPointName names the point that sends split bundle b's latent with
// its learned codec: "learned-NAME".
func LearnedPointName(b *bundle.Bundle) string { return "learned-" + b.Name }

// LossyImage reports whether c sends the image with a lossy image codec
// (JPEG, WebP), whose top-1 no manifest records.
func LossyImage(c codec.Codec) bool {
	return c != nil && (c.ID() == codec.IDJPEG || c.ID() == codec.IDWebP)
}

// RankAccuracy is the top-1 that ranks a point of bundle b sending with
// codec c (nil: the bundle's own, or the model on the device): the
// manifest's top-1 for the learned codec, for the full model and for PNG
// (lossless: the full bundle's); for a lossy image codec, which no manifest
// records, measured, the top-1 measured on the bundle's test set, but at
// most the manifest's: a lossy copy of the image is not ranked above the
// image itself, and a higher measurement is the noise of a few images (the
// agent calibrates on a few).
func RankAccuracy(b *bundle.Bundle, c codec.Codec, measured float64) float64 {
	if LossyImage(c) {
		return min(measured, b.Metrics.Top1)
	}
	return b.Metrics.Top1
}

// NewPolicy returns the policy over points.
func NewPolicy(points []Point, o policy.Options) *policy.Policy {
	pts := make([]policy.Point, len(points))
	for i, p := range points {
		pts[i] = policy.Point{Name: p.Name, Accuracy: p.Accuracy, Local: p.Local}
	}
	return policy.New(pts, o)
}
