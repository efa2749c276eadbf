package edge

import (
	"bytes"
	"image"
)

// The model sees the input image stretched (bilinear, aspect ratio not
// kept) to the bundle's input size (bundle.Input.Pixels); its boxes and
// masks come back in that frame. These functions map them back to the
// input image, so that a record's results fit the image it names.

// imageSize reads an image's size from its header, or 0, 0.
func imageSize(file []byte) (w, h int) {
	cfg, _, err := image.DecodeConfig(bytes.NewReader(file))
	if err != nil {
		return 0, 0
	}
	return cfg.Width, cfg.Height
}

// toImageFrame scales results from the model's input frame (mw x mh) to
// an image of w x h pixels: box corners scaled, masks resized by nearest
// neighbour. It does nothing when either size is unknown.
func toImageFrame(r *Results, mw, mh, w, h int) {
	if mw <= 0 || mh <= 0 || w <= 0 || h <= 0 || (mw == w && mh == h) {
		return
	}
	sx, sy := float32(w)/float32(mw), float32(h)/float32(mh)
	for i := range r.Detect {
		b := &r.Detect[i].Box
		b[0], b[1], b[2], b[3] = b[0]*sx, b[1]*sy, b[2]*sx, b[3]*sy
	}
	if r.Segment != nil {
		r.Segment = resizeMask(r.Segment, w, h)
	}
}

// resizeMask resizes a run-length mask to w x h by nearest neighbour (each
// output pixel takes the class under its centre). A mask whose runs do not
// cover it is returned as it is.
func resizeMask(m *MaskResult, w, h int) *MaskResult {
	src := make([]uint32, 0, m.Width*m.Height)
	for _, run := range m.Runs {
		for range run[1] {
			if len(src) == cap(src) {
				return m
			}
			src = append(src, run[0])
		}
	}
	if len(src) != m.Width*m.Height {
		return m
	}
	out := &MaskResult{Width: w, Height: h}
	cols := make([]int, w)
	for x := range cols {
		cols[x] = min((2*x+1)*m.Width/(2*w), m.Width-1)
	}
	for y := range h {
		row := src[min((2*y+1)*m.Height/(2*h), m.Height-1)*m.Width:]
		for _, sx := range cols {
			c := row[sx]
			if n := len(out.Runs); n > 0 && out.Runs[n-1][0] == c {
				out.Runs[n-1][1]++
			} else {
				out.Runs = append(out.Runs, [2]uint32{c, 1})
			}
		}
	}
	return out
}
