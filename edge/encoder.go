package edge

import (
	"bytes"
	"context"
	"fmt"
	"image"
	_ "image/jpeg" // decode JPEG inputs
	_ "image/png"  // decode PNG inputs
	"time"

	"github.com/splitstream/splitstream/bundle"
	"github.com/splitstream/splitstream/codec"
	"github.com/splitstream/splitstream/models"
)

// Encoder is the edge side of a bundle: preprocessing, the encoder graph
// (for a split bundle) and a codec. It is safe for concurrent use.
type Encoder struct {
	Bundle *bundle.Bundle
	Codec  codec.Codec
	eng    models.Engine // nil for a full bundle: the image itself is sent
	input  string
	// maxPixels bounds the images Encode decodes.
	maxPixels int
}

// EncoderOptions configure an Encoder.
type EncoderOptions struct {
	// Engine is "native" (default) or "ort".
	Engine        string
	EngineOptions models.Options
	// Open opens the encoder graph file. Nil means
	// models.OpenFile(Engine, path, EngineOptions); tests supply their own.
	Open func(path string) (models.Engine, error)
	// Codec overrides the bundle's codec: nil means the learned codec for a
	// split bundle and PNG for a full one.
	Codec codec.Codec
	// MaxPixels bounds the width x height of an input image, checked from
	// its header before any pixel is decoded (a small file can claim a
	// huge image). Default DefaultMaxPixels.
	MaxPixels int
}

// DefaultMaxPixels is the default EncoderOptions.MaxPixels: 40 megapixels
// (a 7728 x 5152 camera image), 160 MB as RGBA once decoded.
const DefaultMaxPixels = 40_000_000

// NewEncoder loads the edge side of a bundle.
func NewEncoder(b *bundle.Bundle, o EncoderOptions) (*Encoder, error) {
	e := &Encoder{Bundle: b, Codec: o.Codec, maxPixels: o.MaxPixels}
	if e.maxPixels <= 0 {
		e.maxPixels = DefaultMaxPixels
	}
	if e.Codec == nil {
		c, err := b.DefaultCodec()
		if err != nil {
			return nil, err
		}
		e.Codec = c
	}
	if err := b.CheckCodec(e.Codec.ID()); err != nil {
		return nil, err
	}
	if b.Kind == bundle.KindFull {
		return e, nil // the image itself is sent: no encoder graph
	}
	open := o.Open
	if open == nil {
		open = func(path string) (models.Engine, error) { return models.OpenFile(o.Engine, path, o.EngineOptions) }
	}
	eng, err := open(b.Path(b.Encoder.File))
	if err != nil {
		return nil, fmt.Errorf("bundle %s: encoder: %w", b.Name, err)
	}
	e.eng, e.input = eng, b.Encoder.Input
	return e, nil
}

// Close releases the encoder graph.
func (e *Encoder) Close() error {
	if e.eng != nil {
		return e.eng.Close()
	}
	return nil
}

// EncodeTimings are the edge stages of one image.
type EncodeTimings struct {
	Preprocess time.Duration // decode the file, resize, normalise
	Encoder    time.Duration // the encoder graph
	Entropy    time.Duration // quantisation and entropy (or image) coding
}

// DecodeImage decodes a PNG or JPEG file of at most DefaultMaxPixels pixels.
func DecodeImage(data []byte) (image.Image, error) {
	return DecodeImageLimit(data, DefaultMaxPixels)
}

// DecodeImageLimit decodes a PNG or JPEG file after checking from its
// header (image.DecodeConfig) that it has at most maxPixels pixels, so that
// a small file claiming a huge image is refused before anything is
// allocated.
func DecodeImageLimit(data []byte, maxPixels int) (image.Image, error) {
	cfg, format, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("decode image: %w", err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || int64(cfg.Width)*int64(cfg.Height) > int64(maxPixels) {
		return nil, fmt.Errorf("decode image: %s of %dx%d pixels, over the limit of %d pixels", format, cfg.Width, cfg.Height, maxPixels)
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("decode image: %w", err)
	}
	return img, nil
}

// Latent runs preprocessing and the encoder on one image and returns what
// the codec codes: the latent (split bundle) or the pixel values (full).
func (e *Encoder) Latent(ctx context.Context, img image.Image) ([]float32, EncodeTimings, error) {
	var t EncodeTimings
	start := time.Now()
	px := e.Bundle.Input.Pixels(nil, img)
	if e.eng == nil {
		t.Preprocess = time.Since(start)
		return px, t, nil
	}
	if err := e.Bundle.Input.Normalize(px); err != nil {
		return nil, t, err
	}
	t.Preprocess = time.Since(start)
	start = time.Now()
	in := e.Bundle.Input
	out, err := e.eng.Run(ctx, map[string]models.Tensor{e.input: {Shape: []int{1, in.Channels, in.Height, in.Width}, Data: px}})
	if err != nil {
		return nil, t, fmt.Errorf("encoder: %w", err)
	}
	y, ok := out[e.Bundle.Encoder.Output]
	if !ok {
		return nil, t, fmt.Errorf("encoder has no output %q", e.Bundle.Encoder.Output)
	}
	if want := e.Bundle.Shape(); len(y.Data) != want.Len() {
		return nil, t, fmt.Errorf("encoder output of shape %v, the manifest says %v", y.Shape, want)
	}
	t.Encoder = time.Since(start)
	return y.Data, t, nil
}

// Encode turns an image file into the request payload.
func (e *Encoder) Encode(ctx context.Context, file []byte) ([]byte, EncodeTimings, error) {
	start := time.Now()
	img, err := DecodeImageLimit(file, e.maxPixels)
	if err != nil {
		return nil, EncodeTimings{}, err
	}
	decode := time.Since(start)
	y, t, err := e.Latent(ctx, img)
	t.Preprocess += decode
	if err != nil {
		return nil, t, err
	}
	start = time.Now()
	payload, err := e.Codec.Encode(nil, e.Bundle.Shape(), y)
	if err != nil {
		return nil, t, fmt.Errorf("%v: %w", e.Codec.ID(), err)
	}
	t.Entropy = time.Since(start)
	return payload, t, nil
}
