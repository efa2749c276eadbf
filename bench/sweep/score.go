package sweep

import (
	"github.com/splitstream/splitstream/bundle"
	"github.com/splitstream/splitstream/pipeline"
	"github.com/splitstream/splitstream/wire"
)

// scorer scores task results against the test set, as eval and demo do.
type scorer struct{ *pipeline.Scorer }

func newScorer(ts *bundle.TestSet, b *bundle.Bundle) *scorer {
	sc, _ := pipeline.NewScorer(b, ts) // cannot fail with a test set given
	return &scorer{sc}
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
	s.AddBytes(payload)
	sc := s.Result()
	return accuracy{top1: sc.Top1, map50: sc.MAP50, miou: sc.MIoU, images: sc.Images, bytesPerImage: sc.BytesPerImage, pred: s.Predictions()}
}
