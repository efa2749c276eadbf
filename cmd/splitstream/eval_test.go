package main

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/splitstream/splitstream/models"
	"github.com/splitstream/splitstream/models/bundle"
)

// shippedBundles loads every bundle under models/zoo, or skips the test
// when the zoo has not been built (make models).
func shippedBundles(t *testing.T) []*bundle.Bundle {
	t.Helper()
	manifests, _ := filepath.Glob(filepath.Join("..", "..", zooDir, "*", "manifest.json"))
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
		lib = filepath.Join("..", "..", "third_party", "ort", "libonnxruntime.so")
		if _, err := os.Stat(lib); err == nil {
			abs, _ := filepath.Abs(lib)
			t.Setenv(models.ORTLibraryEnv, abs)
		}
	}
	probe, err := models.OpenFile(models.ORT, filepath.Join("..", "..", "models", "testdata", "cls_head.onnx"), models.Options{Threads: 1})
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
				r, err := evaluate(context.Background(), b, "", kind, models.Options{}, nil, 0)
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
