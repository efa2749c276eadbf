package edge

import (
	"reflect"
	"testing"
)

func TestToImageFrame(t *testing.T) {
	// A 4 x 2 mask: left half class 1, right half class 2.
	r := &Results{
		Detect:  []BoxResult{{Box: [4]float32{1, 0.5, 3, 2}}},
		Segment: &MaskResult{Width: 4, Height: 2, Runs: [][2]uint32{{1, 2}, {2, 2}, {1, 2}, {2, 2}}},
	}
	toImageFrame(r, 4, 2, 8, 6)
	if got, want := r.Detect[0].Box, [4]float32{2, 1.5, 6, 6}; got != want {
		t.Errorf("box %v, want %v", got, want)
	}
	var want [][2]uint32
	for range 6 {
		want = append(want, [2]uint32{1, 4}, [2]uint32{2, 4})
	}
	if m := r.Segment; m.Width != 8 || m.Height != 6 || !reflect.DeepEqual(m.Runs, want) {
		t.Errorf("mask %dx%d %v, want 8x6 %v", m.Width, m.Height, m.Runs, want)
	}
}

func TestToImageFrameSameOrUnknown(t *testing.T) {
	m := &MaskResult{Width: 2, Height: 1, Runs: [][2]uint32{{0, 2}}}
	for _, size := range [][2]int{{2, 1}, {0, 0}} {
		r := &Results{Segment: m, Detect: []BoxResult{{Box: [4]float32{1, 1, 2, 2}}}}
		toImageFrame(r, 2, 1, size[0], size[1])
		if r.Segment != m || r.Detect[0].Box != [4]float32{1, 1, 2, 2} {
			t.Errorf("size %v changed the results", size)
		}
	}
}

// Runs that do not cover the mask (a hostile or broken reply) leave it as
// it is rather than allocating from its claims.
func TestResizeMaskBadRuns(t *testing.T) {
	for _, runs := range [][][2]uint32{{{1, 1}}, {{1, 1 << 31}}} {
		m := &MaskResult{Width: 2, Height: 2, Runs: runs}
		if got := resizeMask(m, 4, 4); got != m {
			t.Errorf("runs %v resized to %+v", runs, got)
		}
	}
}
