package tasks

import (
	"cmp"
	"fmt"
	"slices"
)

// Box is a ground-truth box: corners in pixels (x1, y1 exclusive) and class.
type Box struct {
	X0, Y0, X1, Y1 float64
	Class          int
}

// Scores are the task metrics over a set of images.
type Scores struct {
	Top1   float64 `json:"top1"`  // fraction of images whose argmax class is the label
	MAP50  float64 `json:"map50"` // mean over ground-truth classes of VOC all-point AP at IoU 0.5
	MIoU   float64 `json:"miou"`  // mean IoU over classes with a non-zero union
	Images int     `json:"images"`
}

// Accumulator gathers predictions and ground truth image by image. Each task
// is optional: an image may add only the tasks that were run.
type Accumulator struct {
	detClasses  int // detection classes (garments)
	maskClasses int // segmentation classes, background included
	correct     int
	counted     int
	dets        [][]Detection
	gts         [][]Box
	conf        []int64 // maskClasses x maskClasses, row = truth, column = prediction
	images      int
}

// NewAccumulator returns an accumulator for detClasses detection classes and
// maskClasses segmentation classes (background included).
func NewAccumulator(detClasses, maskClasses int) *Accumulator {
	return &Accumulator{detClasses: detClasses, maskClasses: maskClasses, conf: make([]int64, maskClasses*maskClasses)}
}

// Image starts a new image; the Add methods then record its tasks.
func (a *Accumulator) Image() { a.images++ }

// AddClass records a classification: predicted and true class.
func (a *Accumulator) AddClass(pred, label int) {
	a.counted++
	if pred == label {
		a.correct++
	}
}

// AddDetections records one image's detections and its ground-truth boxes.
func (a *Accumulator) AddDetections(dets []Detection, gt []Box) {
	a.dets = append(a.dets, dets)
	a.gts = append(a.gts, gt)
}

// AddMask records one image's predicted and true masks (class per pixel).
func (a *Accumulator) AddMask(pred, truth []uint8) error {
	if len(pred) != len(truth) {
		return fmt.Errorf("mask of %d pixels against truth of %d", len(pred), len(truth))
	}
	n := a.maskClasses
	for i, t := range truth {
		if int(t) >= n || int(pred[i]) >= n {
			return fmt.Errorf("mask class %d or %d over %d classes", t, pred[i], n)
		}
		a.conf[int(t)*n+int(pred[i])]++
	}
	return nil
}

// Scores computes the metrics of everything recorded so far.
func (a *Accumulator) Scores() Scores {
	s := Scores{Images: a.images}
	if a.counted > 0 {
		s.Top1 = float64(a.correct) / float64(a.counted)
	}
	s.MAP50, _ = MeanAP(a.dets, a.gts, a.detClasses, 0.5)
	s.MIoU = MeanIoU(a.conf, a.maskClasses)
	return s
}

// MeanIoU is the mean IoU of a confusion matrix (n x n, row = truth) over
// the classes with a non-zero union.
func MeanIoU(conf []int64, n int) float64 {
	var sum float64
	var k int
	for c := range n {
		var row, col int64
		for j := range n {
			row += conf[c*n+j]
			col += conf[j*n+c]
		}
		tp := conf[c*n+c]
		if union := row + col - tp; union > 0 {
			sum += float64(tp) / float64(union)
			k++
		}
	}
	if k == 0 {
		return 0
	}
	return sum / float64(k)
}

// MeanAP is mAP at the IoU threshold: VOC all-point interpolated AP per
// class, averaged over the classes present in the ground truth. Per class the
// detections of all images are sorted by score descending (ties: image index,
// then rank within the image); each is a true positive when its best-IoU
// ground-truth box of that class in its image (the first on ties) has
// IoU >= threshold and is not matched yet, else a false positive. It also
// returns the AP of each class present.
func MeanAP(dets [][]Detection, gts [][]Box, classes int, threshold float64) (float64, map[int]float64) {
	aps := map[int]float64{}
	type cand struct {
		score     float64
		img, rank int
		d         Detection
	}
	for c := range classes {
		npos := 0
		for _, g := range gts {
			for _, b := range g {
				if b.Class == c {
					npos++
				}
			}
		}
		if npos == 0 {
			continue
		}
		var cs []cand
		for i, ds := range dets {
			for r, d := range ds {
				if d.Class == c {
					cs = append(cs, cand{d.Score, i, r, d})
				}
			}
		}
		slices.SortStableFunc(cs, func(x, y cand) int {
			return cmp.Or(cmp.Compare(y.score, x.score), cmp.Compare(x.img, y.img), cmp.Compare(x.rank, y.rank))
		})
		matched := map[[2]int]bool{}
		tp := make([]float64, len(cs))
		fp := make([]float64, len(cs))
		for k, cd := range cs {
			best, bj := 0.0, -1
			for j, g := range gts[cd.img] {
				if g.Class != c {
					continue
				}
				if o := IoU(cd.d, Detection{X0: g.X0, Y0: g.Y0, X1: g.X1, Y1: g.Y1}); o > best {
					best, bj = o, j
				}
			}
			if bj >= 0 && best >= threshold && !matched[[2]int{cd.img, bj}] {
				matched[[2]int{cd.img, bj}] = true
				tp[k] = 1
			} else {
				fp[k] = 1
			}
		}
		// Cumulative sums, precision and recall, then the all-point envelope.
		mrec := []float64{0}
		mpre := []float64{0}
		var ctp, cfp float64
		for k := range cs {
			ctp += tp[k]
			cfp += fp[k]
			mrec = append(mrec, ctp/float64(npos))
			mpre = append(mpre, ctp/max(ctp+cfp, 2.220446049250313e-16))
		}
		mrec = append(mrec, 1)
		mpre = append(mpre, 0)
		for k := len(mpre) - 2; k >= 0; k-- {
			mpre[k] = max(mpre[k], mpre[k+1])
		}
		var ap float64
		for k := 0; k+1 < len(mrec); k++ {
			if mrec[k+1] != mrec[k] {
				ap += (mrec[k+1] - mrec[k]) * mpre[k+1]
			}
		}
		aps[c] = ap
	}
	if len(aps) == 0 {
		return 0, aps
	}
	var sum float64
	for c := range classes {
		sum += aps[c]
	}
	return sum / float64(len(aps)), aps
}
