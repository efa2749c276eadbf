package codec

import (
	"encoding/binary"
	"math"
)

// Raw is the raw float32 latent, little-endian, channel-major: the upper
// bound on bytes that any other latent codec has to beat. Decode refuses
// NaN and infinite values: no head runs on them.
type Raw struct{}

// ID implements Codec.
func (Raw) ID() ID { return IDRawF32 }

// Encode implements Codec.
func (Raw) Encode(dst []byte, s Shape, t []float32) ([]byte, error) {
	if err := checkInput(s, t); err != nil {
		return dst, err
	}
	for _, v := range t {
		dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(v))
	}
	return dst, nil
}

// Decode implements Codec.
func (Raw) Decode(dst []float32, data []byte, s Shape) ([]float32, error) {
	if err := s.check(); err != nil {
		return dst, err
	}
	if len(data) != 4*s.Len() {
		return dst, corrupt(IDRawF32, "%d bytes for %v float32", len(data), s)
	}
	dst = grow(dst, s.Len())
	for i := range dst {
		v := math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return dst, corrupt(IDRawF32, "element %d is %v", i, v)
		}
		dst[i] = v
	}
	return dst, nil
}
