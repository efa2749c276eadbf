package score

import (
	"testing"

	"github.com/splitstream/splitstream/bundle"
	"github.com/splitstream/splitstream/wire"
)

func TestScorer(t *testing.T) {
	b, err := bundle.Load("../../models/zoo/fmnist-es-b0.11")
	if err != nil {
		t.Fatal(err)
	}
	ts, err := b.TestSet()
	if err != nil {
		t.Fatal(err)
	}
	s := New(ts, b)
	// Image 0 classified right, image 1 wrong.
	right := ts.Images[0].Label
	wrong := (ts.Images[1].Label + 1) % len(ts.Labels)
	for i, label := range []int{right, wrong} {
		res := []wire.Result{{Task: wire.Classify, Classes: []wire.Class{{Label: uint32(label), Score: 1}}}}
		if err := s.Add(i, res, nil); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.Scores(); got.Images != 2 || got.Top1 != 0.5 {
		t.Errorf("scores %+v, want 2 images and top-1 0.5", got)
	}
	if got := s.Predictions(); got[0] != right || got[1] != wrong {
		t.Errorf("predictions %v", got)
	}
	if err := s.Add(len(ts.Images), nil, nil); err == nil {
		t.Error("an image index past the test set was accepted")
	}
	if err := s.Add(2, []wire.Result{{Task: wire.Segment}}, nil); err == nil {
		t.Error("a segmentation result without a mask was accepted")
	}
}
