package edge

import (
	"context"
	"slices"
	"testing"

	"github.com/splitstream/splitstream/bundle"
	"github.com/splitstream/splitstream/bundle/bundletest"
	"github.com/splitstream/splitstream/edge/learn"
)

// A user's label wins over the cloud's answer and may add a class; a frame
// with neither is not learned; the model persists and reopens.
func TestLocalLearnsUserLabels(t *testing.T) {
	dir := t.TempDir()
	if err := bundletest.Write(dir, "local"); err != nil {
		t.Fatal(err)
	}
	b, err := bundle.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	model := t.TempDir()
	labels := learn.UserLabels{"cam/0001.png": "Umbrella"}
	lo, err := OpenLocal(b, LocalOptions{Dir: model, Labels: labels, Learn: learn.Config{MinScore: 1e-6}})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := NewEncoder(b, EncoderOptions{Open: (&bundletest.Engines{}).Open})
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	ctx := context.Background()
	payload, _, err := enc.Encode(ctx, encoded(t, "png", 3))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		name  string
		top1  int
		learn bool
	}{{"cam/0001.png", 0, true}, {"other.png", 1, true}, {"unanswered.png", -1, false}} {
		before := lo.Info().Samples
		if err := lo.Learn(ctx, f.name, payload, b.Shape(), f.top1, 0.9); err != nil {
			t.Fatal(err)
		}
		if learned := lo.Info().Samples > before; learned != f.learn {
			t.Errorf("%s: learned %v, want %v", f.name, learned, f.learn)
		}
	}
	if got := lo.Info().Labels; !slices.Contains(got, "Umbrella") {
		t.Errorf("labels %v lack the user's new class", got)
	}
	if err := lo.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := OpenLocal(b, LocalOptions{Dir: model})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if again.Info().Samples != 2 {
		t.Errorf("reopened model has %d samples, want 2", again.Info().Samples)
	}
}
