// Package codec holds the feature codecs behind one interface: the learned
// codec (latent -> integer symbols around the channel medians -> rANS bytes,
// and back) and the baselines a user would otherwise pick: the raw float32
// latent, an int8 latent compressed with zstd, and the image codecs PNG, JPEG
// and WebP that send the input itself to a full-model bundle.
//
// Every codec has a stable ID that travels in the request header
// (docs/PROTOCOL.md). A codec works on a channel-major tensor of float32
// values: the latent for the latent codecs, pixel values in [0, 255] for the
// image codecs.
package codec

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ID names a codec on the wire.
type ID uint8

// The codecs. The numbers are part of the protocol: never reuse one.
const (
	IDLearned  ID = 1 // factorized-rans-v1: the bundle's entropy bottleneck
	IDRawF32   ID = 2 // float32 latent, little-endian
	IDInt8Zstd ID = 3 // per-channel int8 latent, zstd
	IDPNG      ID = 4 // input image, PNG
	IDJPEG     ID = 5 // input image, JPEG
	IDWebP     ID = 6 // input image, lossy WebP
)

var idNames = map[ID]string{
	IDLearned: "factorized-rans-v1", IDRawF32: "raw-f32", IDInt8Zstd: "int8-zstd",
	IDPNG: "png", IDJPEG: "jpeg", IDWebP: "webp",
}

func (id ID) String() string {
	if n, ok := idNames[id]; ok {
		return n
	}
	return fmt.Sprintf("codec(%d)", uint8(id))
}

// Shape is the shape of a coded tensor: channels, height, width.
type Shape struct{ C, H, W int }

// Len is the number of elements of a tensor of this shape.
func (s Shape) Len() int { return s.C * s.H * s.W }

func (s Shape) String() string { return fmt.Sprintf("%dx%dx%d", s.C, s.H, s.W) }

// maxElements bounds the tensors a codec accepts (64 Mi elements), so that a
// header cannot make a decoder allocate without limit.
const maxElements = 1 << 26

func (s Shape) check() error {
	if s.C <= 0 || s.H <= 0 || s.W <= 0 || s.Len() > maxElements {
		return fmt.Errorf("shape %v: empty or over %d elements", s, maxElements)
	}
	return nil
}

// Codec encodes a tensor to bytes and back.
type Codec interface {
	// ID is the codec's number on the wire.
	ID() ID
	// Encode appends the coded form of t, of shape s in channel-major order, to dst.
	Encode(dst []byte, s Shape, t []float32) ([]byte, error)
	// Decode decodes data, which must code a tensor of shape s, into dst
	// (grown as needed) and returns it. An error wraps ErrCorrupt when data
	// is not a valid coding of such a tensor.
	Decode(dst []float32, data []byte, s Shape) ([]float32, error)
}

// ErrCorrupt marks payloads that do not decode.
var ErrCorrupt = errors.New("corrupt payload")

func corrupt(id ID, format string, args ...any) error {
	return fmt.Errorf("%v: %w: %s", id, ErrCorrupt, fmt.Sprintf(format, args...))
}

func checkInput(s Shape, t []float32) error {
	if err := s.check(); err != nil {
		return err
	}
	if len(t) != s.Len() {
		return fmt.Errorf("tensor of %d elements is not %v", len(t), s)
	}
	return nil
}

func grow(dst []float32, n int) []float32 {
	if cap(dst) < n {
		return make([]float32, n)
	}
	return dst[:n]
}

// Baseline returns the baseline codec named by spec: "raw-f32", "int8-zstd",
// "png", "jpeg[:QUALITY]" or "webp[:QUALITY]" (defaults in ImageOptions).
// The learned codec needs the bundle's tables: see NewLearned.
func Baseline(spec string) (Codec, error) {
	name, q, hasQ := strings.Cut(spec, ":")
	opts := ImageOptions{}
	if hasQ {
		v, err := strconv.Atoi(q)
		if err != nil || v < 1 || v > 100 {
			return nil, fmt.Errorf("codec %q: quality must be 1..100", spec)
		}
		opts.Quality = v
	}
	switch {
	case name == "raw-f32" && !hasQ:
		return Raw{}, nil
	case name == "int8-zstd" && !hasQ:
		return NewInt8Zstd(), nil
	case name == "png" && !hasQ:
		return NewImage(IDPNG, opts)
	case name == "jpeg":
		return NewImage(IDJPEG, opts)
	case name == "webp":
		return NewImage(IDWebP, opts)
	}
	return nil, fmt.Errorf("unknown codec %q (want raw-f32, int8-zstd, png, jpeg[:Q], webp[:Q])", spec)
}
