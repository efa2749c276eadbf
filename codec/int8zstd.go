package codec

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/klauspost/compress/zstd"
)

// Int8Zstd quantizes each channel of the latent to int8 with its own scale
// (max |y| / 127) and compresses the int8 values with zstd. The payload is
// C float32 scales, little-endian, then one zstd frame.
type Int8Zstd struct {
	enc *zstd.Encoder
	dec *zstd.Decoder
}

// NewInt8Zstd returns the int8 + zstd codec. It is safe for concurrent use.
func NewInt8Zstd() *Int8Zstd {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	if err != nil {
		panic(fmt.Sprintf("zstd writer with constant options: %v", err)) // cannot happen
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(maxElements))
	if err != nil {
		panic(fmt.Sprintf("zstd reader with constant options: %v", err)) // cannot happen
	}
	return &Int8Zstd{enc: enc, dec: dec}
}

// ID implements Codec.
func (*Int8Zstd) ID() ID { return IDInt8Zstd }

// Encode implements Codec.
func (c *Int8Zstd) Encode(dst []byte, s Shape, t []float32) ([]byte, error) {
	if err := checkInput(s, t); err != nil {
		return dst, err
	}
	plane := s.H * s.W
	q := make([]byte, len(t))
	for ch := range s.C {
		vals := t[ch*plane : (ch+1)*plane]
		var m float32
		for _, v := range vals {
			if a := float32(math.Abs(float64(v))); a > m {
				m = a
			}
		}
		if math.IsInf(float64(m), 0) || math.IsNaN(float64(m)) {
			return dst, fmt.Errorf("int8-zstd: channel %d is not finite", ch)
		}
		scale := m / 127
		dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(scale))
		for i, v := range vals {
			var x float32
			if scale > 0 {
				x = float32(math.RoundToEven(float64(v / scale)))
			}
			q[ch*plane+i] = byte(int8(max(-127, min(127, x))))
		}
	}
	return c.enc.EncodeAll(q, dst), nil
}

// Decode implements Codec.
func (c *Int8Zstd) Decode(dst []float32, data []byte, s Shape) ([]float32, error) {
	if err := s.check(); err != nil {
		return dst, err
	}
	if len(data) < 4*s.C {
		return dst, corrupt(IDInt8Zstd, "%d bytes cannot hold %d scales", len(data), s.C)
	}
	scales := make([]float32, s.C)
	for i := range scales {
		scales[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
		if math.IsNaN(float64(scales[i])) || math.IsInf(float64(scales[i]), 0) || scales[i] < 0 {
			return dst, corrupt(IDInt8Zstd, "scale %d is %v", i, scales[i])
		}
	}
	q, err := c.dec.DecodeAll(data[4*s.C:], make([]byte, 0, s.Len()))
	if err != nil {
		return dst, corrupt(IDInt8Zstd, "zstd: %v", err)
	}
	if len(q) != s.Len() {
		return dst, corrupt(IDInt8Zstd, "%d values for %v", len(q), s)
	}
	dst = grow(dst, s.Len())
	plane := s.H * s.W
	for i, b := range q {
		dst[i] = float32(int8(b)) * scales[i/plane]
	}
	return dst, nil
}
