package sweep

import (
	"fmt"

	"github.com/splitstream/splitstream/models/bundle"
	"github.com/splitstream/splitstream/tasks"
	"github.com/splitstream/splitstream/wire"
)

// scorer scores task results against the test set.
type scorer struct {
	ts   *bundle.TestSet
	acc  *tasks.Accumulator
	pred map[int]int
}

func newScorer(ts *bundle.TestSet, b *bundle.Bundle) *scorer {
	det, mask := 0, 0
	if h := b.Head(bundle.TaskDetection); h != nil {
		det = len(h.Labels)
	}
	if h := b.Head(bundle.TaskSegmentation); h != nil {
		mask = len(h.Labels)
	}
	return &scorer{ts: ts, acc: tasks.NewAccumulator(det, mask), pred: map[int]int{}}
}

func top1(results []wire.Result) (int, bool) {
	for _, r := range results {
		if r.Task == wire.Classify && len(r.Classes) > 0 {
			return int(r.Classes[0].Label), true
		}
	}
	return 0, false
}

// add scores test image i. dets are the detections at full precision when
// the caller has them (edge-only); otherwise the reply's boxes are used.
func (s *scorer) add(i int, results []wire.Result, dets []tasks.Detection) error {
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

// result returns the scores; payload is the total payload bytes sent.
func (s *scorer) result(payload int) accuracy {
	sc := s.acc.Scores()
	a := accuracy{top1: sc.Top1, map50: sc.MAP50, miou: sc.MIoU, images: sc.Images, pred: s.pred}
	if sc.Images > 0 {
		a.bytesPerImage = float64(payload) / float64(sc.Images)
	}
	return a
}
