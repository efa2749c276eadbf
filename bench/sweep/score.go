package sweep

import (
	"github.com/splitstream/splitstream/bundle"
	"github.com/splitstream/splitstream/tasks/score"
	"github.com/splitstream/splitstream/wire"
)

// scorer scores task results against the test set.
type scorer struct{ *score.Scorer }

func newScorer(ts *bundle.TestSet, b *bundle.Bundle) *scorer {
	return &scorer{score.New(ts, b)}
}

func top1(results []wire.Result) (int, bool) {
	for _, r := range results {
		if r.Task == wire.Classify && len(r.Classes) > 0 {
			return int(r.Classes[0].Label), true
		}
	}
	return 0, false
}

// result returns the scores; payload is the total payload bytes sent.
func (s *scorer) result(payload int) accuracy {
	sc := s.Scores()
	a := accuracy{top1: sc.Top1, map50: sc.MAP50, miou: sc.MIoU, images: sc.Images, pred: s.Predictions()}
	if sc.Images > 0 {
		a.bytesPerImage = float64(payload) / float64(sc.Images)
	}
	return a
}
