package codec

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"math"

	"github.com/gen2brain/webp"
)

// ImageOptions configure the image codecs.
type ImageOptions struct {
	// Quality of JPEG and WebP, 1..100. Zero means the default: 90 for
	// JPEG, 75 for WebP (the libraries' customary defaults). PNG ignores it.
	Quality int
}

// Default qualities.
const (
	DefaultJPEGQuality = 90
	DefaultWebPQuality = 75
)

// The WebP codec is github.com/gen2brain/webp: libwebp compiled to
// WebAssembly and run by wazero, so it needs no cgo. Unless built with the
// tag nodynamic it first tries to dlopen a system libwebp through purego,
// which makes even CGO_ENABLED=0 binaries dynamically linked; the Makefile's
// static builds (make cross) therefore pass -tags nodynamic.

// Image is an image codec: it codes a 3-channel tensor of pixel values in
// [0, 255] (channel-major RGB, rounded and clamped to 8 bits) as a PNG, JPEG
// or WebP file, and decodes such a file back into pixel values.
type Image struct {
	id      ID
	quality int
}

// NewImage returns the image codec id (IDPNG, IDJPEG or IDWebP).
func NewImage(id ID, o ImageOptions) (*Image, error) {
	if o.Quality < 0 || o.Quality > 100 {
		return nil, fmt.Errorf("%v: quality %d not in 1..100", id, o.Quality)
	}
	q := o.Quality
	switch id {
	case IDPNG:
	case IDJPEG:
		if q == 0 {
			q = DefaultJPEGQuality
		}
	case IDWebP:
		if q == 0 {
			q = DefaultWebPQuality
		}
	default:
		return nil, fmt.Errorf("%v is not an image codec", id)
	}
	return &Image{id: id, quality: q}, nil
}

// ID implements Codec.
func (c *Image) ID() ID { return c.id }

// ToRGBA turns a channel-major RGB tensor of pixel values into an image.
func ToRGBA(s Shape, t []float32) (*image.RGBA, error) {
	if err := checkInput(s, t); err != nil {
		return nil, err
	}
	if s.C != 3 {
		return nil, fmt.Errorf("image of %d channels, want 3", s.C)
	}
	img := image.NewRGBA(image.Rect(0, 0, s.W, s.H))
	plane := s.H * s.W
	for i := range plane {
		for ch := range 3 {
			v := float64(t[ch*plane+i])
			if math.IsNaN(v) {
				v = 0
			}
			img.Pix[4*i+ch] = uint8(max(0, min(255, math.RoundToEven(v))))
		}
		img.Pix[4*i+3] = 255
	}
	return img, nil
}

// FromImage writes the RGB pixel values of img, channel-major, into dst.
func FromImage(dst []float32, img image.Image) []float32 {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	plane := w * h
	dst = grow(dst, 3*plane)
	if rgba, ok := img.(*image.RGBA); ok {
		for y := range h {
			row := rgba.Pix[y*rgba.Stride:]
			for x := range w {
				i := y*w + x
				dst[i], dst[plane+i], dst[2*plane+i] = float32(row[4*x]), float32(row[4*x+1]), float32(row[4*x+2])
			}
		}
		return dst
	}
	for y := range h {
		for x := range w {
			r, g, bl, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
			i := y*w + x
			dst[i], dst[plane+i], dst[2*plane+i] = float32(r>>8), float32(g>>8), float32(bl>>8)
		}
	}
	return dst
}

// Encode implements Codec.
func (c *Image) Encode(dst []byte, s Shape, t []float32) ([]byte, error) {
	img, err := ToRGBA(s, t)
	if err != nil {
		return dst, fmt.Errorf("%v: %w", c.id, err)
	}
	buf := bytes.NewBuffer(dst)
	switch c.id {
	case IDPNG:
		enc := png.Encoder{CompressionLevel: png.DefaultCompression}
		err = enc.Encode(buf, img)
	case IDJPEG:
		err = jpeg.Encode(buf, img, &jpeg.Options{Quality: c.quality})
	case IDWebP:
		err = webp.Encode(buf, img, webp.Options{Quality: c.quality, Method: webp.DefaultMethod})
	}
	if err != nil {
		return dst, fmt.Errorf("%v encode: %w", c.id, err)
	}
	return buf.Bytes(), nil
}

// Decode implements Codec. The image must be exactly s.W x s.H; its size is
// checked before the pixels are decoded, so a small file cannot make the
// decoder allocate a huge image.
func (c *Image) Decode(dst []float32, data []byte, s Shape) ([]float32, error) {
	if err := s.check(); err != nil {
		return dst, err
	}
	if s.C != 3 {
		return dst, fmt.Errorf("%v: image of %d channels, want 3", c.id, s.C)
	}
	var (
		cfg image.Config
		err error
	)
	switch c.id {
	case IDPNG:
		cfg, err = png.DecodeConfig(bytes.NewReader(data))
	case IDJPEG:
		cfg, err = jpeg.DecodeConfig(bytes.NewReader(data))
	case IDWebP:
		cfg, err = webp.DecodeConfig(bytes.NewReader(data))
	}
	if err != nil {
		return dst, corrupt(c.id, "%v", err)
	}
	if cfg.Width != s.W || cfg.Height != s.H {
		return dst, corrupt(c.id, "image is %dx%d, header says %dx%d", cfg.Width, cfg.Height, s.W, s.H)
	}
	var img image.Image
	switch c.id {
	case IDPNG:
		img, err = png.Decode(bytes.NewReader(data))
	case IDJPEG:
		img, err = jpeg.Decode(bytes.NewReader(data))
	case IDWebP:
		img, err = webp.Decode(bytes.NewReader(data))
	}
	if err != nil {
		return dst, corrupt(c.id, "%v", err)
	}
	if b := img.Bounds(); b.Dx() != s.W || b.Dy() != s.H {
		return dst, corrupt(c.id, "decoded image is %dx%d, want %dx%d", b.Dx(), b.Dy(), s.W, s.H)
	}
	return FromImage(dst, img), nil
}
