package tasks

import (
	"math"
	"testing"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

func TestTopK(t *testing.T) {
	got := TopK([]float32{1, 3, 3, 0}, 3)
	if len(got) != 3 || got[0].Label != 1 || got[1].Label != 2 || got[2].Label != 0 {
		t.Fatalf("order %v, want labels 1, 2, 0", got)
	}
	z := 2*math.Exp(3) + math.Exp(1) + 1
	if !near(float64(got[0].Score), float64(float32(math.Exp(3)/z))) {
		t.Fatalf("score %v, want softmax %v", got[0].Score, math.Exp(3)/z)
	}
	if n := len(TopK([]float32{1, 2}, 5)); n != 2 {
		t.Fatalf("k over the class count gave %d entries", n)
	}
}

func params() DetectParams {
	return DetectParams{Stride: 4, HeatmapActivation: "none", MaxDetections: 10, ScoreThreshold: 0.1, NMSIoU: 0.5, PeakKernel: 3}
}

func TestCenterNet(t *testing.T) {
	const c, h, w = 2, 4, 5
	heat := make([]float32, c*h*w)
	size := make([]float32, 2*h*w)
	off := make([]float32, 2*h*w)
	set := func(ch, y, x int, s, bw, bh, ox, oy float32) {
		i := y*w + x
		heat[ch*h*w+i] = s
		size[i], size[h*w+i] = bw, bh
		off[i], off[h*w+i] = ox, oy
	}
	set(0, 1, 1, 0.9, 2, 3, 0.5, 0.25) // peak
	set(0, 1, 2, 0.5, 2, 3, 0, 0)      // beside a higher cell: not a peak
	set(0, 3, 4, 0.6, 2, 2, 0, 0)      // peak in a corner
	set(1, 1, 1, 0.8, 2, 3, 0.5, 0.25) // same box, other class: NMS is per class
	set(1, 1, 3, 0.7, 2, 3, 0, 0)      // peak (1,2 is 0 in class 1) overlapping the 0.8 box: suppressed?
	set(1, 3, 0, 0.05, 1, 1, 0, 0)     // under the threshold
	got, err := CenterNet(heat, size, off, c, h, w, params())
	if err != nil {
		t.Fatal(err)
	}
	// Box of (0,1,1): centre ((1+0.5)*4, (1+0.25)*4) = (6, 5), 8 x 12.
	want := []Detection{
		{X0: 2, Y0: -1, X1: 10, Y1: 11, Class: 0, Score: 0.9},
		{X0: 2, Y0: -1, X1: 10, Y1: 11, Class: 1, Score: 0.8},
		// (1,1,3): centre (12, 4), 8 x 12 -> [8, -2, 16, 10]; IoU with [2,-1,10,11]
		// = 2*11 / (96+96-22) = 0.129: kept.
		{X0: 8, Y0: -2, X1: 16, Y1: 10, Class: 1, Score: 0.7},
		{X0: 12, Y0: 8, X1: 20, Y1: 16, Class: 0, Score: 0.6}, // centre (16, 12), 8 x 8,
	}
	if len(got) != len(want) {
		t.Fatalf("got %d detections %+v, want %d", len(got), got, len(want))
	}
	for i := range want {
		g, wd := got[i], want[i]
		if g.Class != wd.Class || !near(g.Score, float64(float32(wd.Score))) || !near(g.X0, wd.X0) || !near(g.Y0, wd.Y0) || !near(g.X1, wd.X1) || !near(g.Y1, wd.Y1) {
			t.Errorf("detection %d: %+v, want %+v", i, g, wd)
		}
	}

	// With a low NMS threshold the overlapping class-1 box goes.
	p := params()
	p.NMSIoU = 0.1
	got, _ = CenterNet(heat, size, off, c, h, w, p)
	if len(got) != 3 {
		t.Errorf("NMS at 0.1 kept %d boxes, want 3", len(got))
	}
	p.MaxDetections = 1
	if got, _ = CenterNet(heat, size, off, c, h, w, p); len(got) != 1 || got[0].Score != float64(float32(0.9)) {
		t.Errorf("max detections 1 gave %+v", got)
	}
	p = params()
	p.HeatmapActivation = "sigmoid"
	p.ScoreThreshold = 0.7 // sigmoid(0.9) = 0.711, sigmoid(0.8) = 0.690
	if got, _ = CenterNet(heat, size, off, c, h, w, p); len(got) != 1 {
		t.Errorf("sigmoid activation: %d detections, want 1", len(got))
	}
	if _, err := CenterNet(heat[:5], size, off, c, h, w, params()); err == nil {
		t.Error("accepted a short heatmap")
	}
}

func TestMeanAP(t *testing.T) {
	gts := [][]Box{
		{{0, 0, 10, 10, 0}},
		{{0, 0, 10, 10, 0}, {20, 20, 30, 30, 1}},
	}
	dets := [][]Detection{
		{{X0: 0, Y0: 0, X1: 10, Y1: 10, Class: 0, Score: 0.9}, {X0: 50, Y0: 50, X1: 60, Y1: 60, Class: 0, Score: 0.8}},
		{{X0: 1, Y0: 0, X1: 10, Y1: 10, Class: 0, Score: 0.7}, {X0: 0, Y0: 0, X1: 10, Y1: 10, Class: 0, Score: 0.6},
			{X0: 20, Y0: 20, X1: 25, Y1: 30, Class: 1, Score: 0.5}},
	}
	// Class 0: TP (0.9), FP (0.8), TP (0.7), FP duplicate (0.6).
	// precision 1, .5, .667, .5; recall .5, .5, 1, 1 -> AP = .5*1 + .5*(2/3).
	// Class 1: IoU 0.5 exactly -> TP, AP 1.
	m, aps := MeanAP(dets, gts, 3, 0.5)
	if !near(aps[0], 0.5+0.5*2.0/3) || !near(aps[1], 1) || len(aps) != 2 {
		t.Fatalf("APs %v", aps)
	}
	if !near(m, (aps[0]+aps[1])/2) {
		t.Fatalf("mAP %v", m)
	}
}

func TestAccumulator(t *testing.T) {
	a := NewAccumulator(2, 3)
	a.Image()
	a.AddClass(1, 1)
	if err := a.AddMask([]uint8{0, 1, 1, 2}, []uint8{0, 1, 2, 2}); err != nil {
		t.Fatal(err)
	}
	a.Image()
	a.AddClass(0, 1)
	if err := a.AddMask([]uint8{0, 0, 0, 0}, []uint8{0, 0, 0, 0}); err != nil {
		t.Fatal(err)
	}
	s := a.Scores()
	// Confusion: class 0: tp 5, union 5 -> 1; class 1: tp 1, union 2 -> .5;
	// class 2: tp 1, union 2 -> .5.
	if s.Images != 2 || !near(s.Top1, 0.5) || !near(s.MIoU, 2.0/3) {
		t.Fatalf("scores %+v", s)
	}
	if err := a.AddMask([]uint8{3}, []uint8{0}); err == nil {
		t.Fatal("accepted a class over the class count")
	}
}

func TestMaskArgmax(t *testing.T) {
	// 3 classes, 1x3 pixels; pixel 2 ties between classes 1 and 2.
	got, err := MaskArgmax([]float32{5, 0, 0, 1, 7, 3, 0, 1, 3}, 3, 1, 3)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string([]uint8{0, 1, 1}) {
		t.Fatalf("mask %v, want [0 1 1]", got)
	}
}
