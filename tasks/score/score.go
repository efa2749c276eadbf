// Package score scores task replies against a bundle's test set with the
// metrics of package tasks (top-1, mAP@0.5, mIoU). eval, demo and the bench
// share it so that they all measure the same thing.
package score

import (
	"fmt"

	"github.com/splitstream/splitstream/bundle"
	"github.com/splitstream/splitstream/tasks"
	"github.com/splitstream/splitstream/wire"
)

// Scorer accumulates the scores of replies to a bundle's test images.
type Scorer struct {
	ts   *bundle.TestSet
	acc  *tasks.Accumulator
	pred map[int]int
}

// New returns a Scorer for test set ts and the heads of bundle b.
func New(ts *bundle.TestSet, b *bundle.Bundle) *Scorer {
	det, mask := 0, 0
	if h := b.Head(bundle.TaskDetection); h != nil {
		det = len(h.Labels)
	}
	if h := b.Head(bundle.TaskSegmentation); h != nil {
		mask = len(h.Labels)
	}
	return &Scorer{ts: ts, acc: tasks.NewAccumulator(det, mask), pred: map[int]int{}}
}

// Add scores test image i. dets are the detections at full precision when
// the caller has them (in process); otherwise the reply's boxes are used.
func (s *Scorer) Add(i int, results []wire.Result, dets []tasks.Detection) error {
	if i < 0 || i >= len(s.ts.Images) {
		return fmt.Errorf("test image %d out of range (%d images)", i, len(s.ts.Images))
	}
	im := &s.ts.Images[i]
	s.acc.Image()
	for _, r := range results {
		switch r.Task {
		case wire.Classify:
			if len(r.Classes) == 0 {
				return fmt.Errorf("%s: empty classification", im.File)
			}
			s.acc.AddClass(int(r.Classes[0].Label), im.Label)
			s.pred[i] = int(r.Classes[0].Label)
		case wire.Detect:
			d := dets
			if d == nil {
				d = tasks.FromBoxes(r.Boxes)
			}
			s.acc.AddDetections(d, im.GroundTruthBoxes())
		case wire.Segment:
			if r.Mask == nil {
				return fmt.Errorf("%s: segmentation without a mask", im.File)
			}
			truth, w, h, err := s.ts.Mask(i)
			if err != nil {
				return err
			}
			if w != r.Mask.Width || h != r.Mask.Height {
				return fmt.Errorf("%s: mask %dx%d, truth %dx%d", im.File, r.Mask.Width, r.Mask.Height, w, h)
			}
			if err := s.acc.AddMask(r.Mask.Pixels(), truth); err != nil {
				return fmt.Errorf("%s: %w", im.File, err)
			}
		}
	}
	return nil
}

// Scores returns the metrics of the images scored so far.
func (s *Scorer) Scores() tasks.Scores { return s.acc.Scores() }

// Predictions returns the predicted top-1 class of each scored test image.
func (s *Scorer) Predictions() map[int]int { return s.pred }
