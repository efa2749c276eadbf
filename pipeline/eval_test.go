package pipeline

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/splitstream/splitstream/bundle"
	"github.com/splitstream/splitstream/models"
)

// shippedBundles loads every bundle under models/zoo, or skips the test
// when the zoo has not been built (make models).
func shippedBundles(t *testing.T) []*bundle.Bundle {
	t.Helper()
	manifests, _ := filepath.Glob(filepath.Join("..", bundle.ZooDir, "*", "manifest.json"))
	slices.Sort(manifests)
	if len(manifests) == 0 {
		t.Skip("no bundles under models/zoo: run `make models` (or merge the train branch) first")
	}
	var out []*bundle.Bundle
	for _, m := range manifests {
		b, err := bundle.Load(filepath.Dir(m))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// engines returns the engines to test: native always, ort when this binary
// has cgo and ONNX Runtime's library is where $SPLITSTREAM_ORT_LIB says.
func engines(t *testing.T) []string {
	kinds := []string{models.Native}
	lib := os.Getenv(models.ORTLibraryEnv)
	if lib == "" {
		lib = filepath.Join("..", "third_party", "ort", "libonnxruntime.so")
		if _, err := os.Stat(lib); err == nil {
			abs, _ := filepath.Abs(lib)
			t.Setenv(models.ORTLibraryEnv, abs)
		}
	}
	probe, err := models.OpenFile(models.ORT, filepath.Join("..", "models", "testdata", "cls_head.onnx"), models.Options{Threads: 1})
	switch {
	case err == nil:
		probe.Close()
		kinds = append(kinds, models.ORT)
	case errors.Is(err, models.ErrNoCgo):
		t.Logf("ort engine not tested: %v", err)
	default:
		t.Logf("ort engine not tested: %v (run `make ort`)", err)
	}
	return kinds
}

// TestEvalReproducesRecordedMetrics runs every shipped bundle's test set
// through the split path with each engine and compares the metrics with
// those recorded at export: top-1 within 0.5 points, mAP@0.5 and mIoU within
// 0.005.
//
// It runs the whole test set of every bundle with each engine (about a
// minute on two cores), so -short skips it.
func TestEvalReproducesRecordedMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the full test sets take about a minute")
	}
	bundles := shippedBundles(t)
	for _, kind := range engines(t) {
		for _, b := range bundles {
			t.Run(kind+"/"+b.Name, func(t *testing.T) {
				r, err := Evaluate(context.Background(), b, EvalOptions{Engine: Engine{Kind: kind}})
				if err != nil {
					t.Fatal(err)
				}
				m := b.Metrics
				t.Logf("top1 %.4f (recorded %.4f), map50 %.4f (%.4f), miou %.4f (%.4f), %.1f bytes/image (%.1f), %d images",
					r.Top1, m.Top1, r.MAP50, m.MAP50, r.MIoU, m.MIoU, r.BytesPerImage, m.BytesPerImage, r.Images)
				if r.Images != m.Images {
					t.Errorf("%d images, the manifest recorded %d", r.Images, m.Images)
				}
				for _, c := range []struct {
					name      string
					got, want float64
					tol       float64
				}{{"top1", r.Top1, m.Top1, 0.005}, {"map50", r.MAP50, m.MAP50, 0.005}, {"miou", r.MIoU, m.MIoU, 0.005}} {
					if math.Abs(c.got-c.want) > c.tol {
						t.Errorf("%s %.4f, recorded %.4f: off by more than %v", c.name, c.got, c.want, c.tol)
					}
				}
				if b.Kind == bundle.KindSplit && math.Abs(r.BytesPerImage-m.BytesPerImage) > 0.01*m.BytesPerImage {
					t.Errorf("%.1f bytes/image, recorded %.1f", r.BytesPerImage, m.BytesPerImage)
				}
			})
		}
	}
}

// TestStream runs the first test images of the shipped split bundle through
// a cloud server and an edge agent on loopback, and checks that the replies
// score as the in-process path does on the same images.
func TestStream(t *testing.T) {
	var b *bundle.Bundle
	for _, sb := range shippedBundles(t) {
		if sb.Kind == bundle.KindSplit {
			b = sb
			break
		}
	}
	if b == nil {
		t.Skip("no split bundle")
	}
	ctx := context.Background()
	got, err := Stream(ctx, b, StreamOptions{Limit: 24})
	if err != nil {
		t.Fatal(err)
	}
	want, err := Evaluate(ctx, b, EvalOptions{Limit: 24})
	if err != nil {
		t.Fatal(err)
	}
	if got.Images != 24 || got.Top1 != want.Top1 || got.MAP50 != want.MAP50 || got.MIoU != want.MIoU || got.BytesPerImage != want.BytesPerImage {
		t.Errorf("over QUIC %+v, in process %+v", got.Scores, want)
	}
	if got.Summary.Count != 24 || got.Summary.Errors != 0 || got.Connects < 1 {
		t.Errorf("summary %d images, %d errors, %d connections", got.Summary.Count, got.Summary.Errors, got.Connects)
	}
}
