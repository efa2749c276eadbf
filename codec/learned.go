package codec

import (
	"fmt"
	"math"
	"sync"

	"github.com/splitstream/splitstream/entropy"
)

// Learned is the learned codec, factorized-rans-v1: the latent y of a split
// bundle is quantized around the per-channel medians of its entropy
// bottleneck, symbol = round(y - median[c]) (round half to even, as
// torch.round), and the symbols are rANS-coded in channel-major order, each
// with the CDF row of its channel; one string per image, byte-compatible with
// CompressAI's EntropyBottleneck.compress. Decoding gives
// y_hat = symbol + median[c]. It is safe for concurrent use.
type Learned struct {
	table   *entropy.Table
	medians []float32
	encs    sync.Pool // *entropy.Encoder
}

// NewLearned returns the learned codec for a bottleneck with one CDF row and
// one median per channel.
func NewLearned(t *entropy.Table, medians []float32) (*Learned, error) {
	if t == nil || t.Rows() != len(medians) {
		rows := 0
		if t != nil {
			rows = t.Rows()
		}
		return nil, fmt.Errorf("learned codec: %d CDF rows but %d medians", rows, len(medians))
	}
	for c, m := range medians {
		if math.IsNaN(float64(m)) || math.IsInf(float64(m), 0) {
			return nil, fmt.Errorf("learned codec: median %d is %v", c, m)
		}
	}
	return &Learned{table: t, medians: medians, encs: sync.Pool{New: func() any { return new(entropy.Encoder) }}}, nil
}

// ID implements Codec.
func (*Learned) ID() ID { return IDLearned }

func (l *Learned) checkShape(s Shape) error {
	if err := s.check(); err != nil {
		return err
	}
	if s.C != len(l.medians) {
		return fmt.Errorf("latent of %d channels, the bottleneck has %d", s.C, len(l.medians))
	}
	return nil
}

// Quantize returns the symbols of latent y (shape s, channel-major):
// round(y - median[c]), half to even, in float32 arithmetic as PyTorch does.
func (l *Learned) Quantize(dst []int32, s Shape, y []float32) ([]int32, error) {
	if err := checkInput(s, y); err != nil {
		return dst, err
	}
	if err := l.checkShape(s); err != nil {
		return dst, err
	}
	plane := s.H * s.W
	for c := range s.C {
		m := l.medians[c]
		lo, hi := l.table.SymbolRange(c)
		for _, v := range y[c*plane : (c+1)*plane] {
			q := math.RoundToEven(float64(v - m))
			if !(q >= float64(lo) && q <= float64(hi)) { // also catches NaN
				return dst, fmt.Errorf("learned codec: channel %d: latent %v is outside the codable range", c, v)
			}
			dst = append(dst, int32(q))
		}
	}
	return dst, nil
}

// Dequantize writes y_hat = symbol + median[c] for the symbols of a latent of
// shape s into dst.
func (l *Learned) Dequantize(dst []float32, s Shape, symbols []int32) []float32 {
	dst = grow(dst, s.Len())
	plane := s.H * s.W
	for i, q := range symbols {
		dst[i] = float32(q) + l.medians[i/plane]
	}
	return dst
}

// indexes returns the CDF row of every element of a latent of shape s.
func indexes(s Shape) []int32 {
	idx := make([]int32, s.Len())
	plane := s.H * s.W
	for i := range idx {
		idx[i] = int32(i / plane)
	}
	return idx
}

// Encode implements Codec.
func (l *Learned) Encode(dst []byte, s Shape, y []float32) ([]byte, error) {
	sym, err := l.Quantize(make([]int32, 0, len(y)), s, y)
	if err != nil {
		return dst, err
	}
	return l.EncodeSymbols(dst, s, sym)
}

// EncodeSymbols rANS-codes symbols already quantized with Quantize.
func (l *Learned) EncodeSymbols(dst []byte, s Shape, symbols []int32) ([]byte, error) {
	if err := l.checkShape(s); err != nil {
		return dst, err
	}
	if len(symbols) != s.Len() {
		return dst, fmt.Errorf("learned codec: %d symbols for %v", len(symbols), s)
	}
	enc := l.encs.Get().(*entropy.Encoder)
	defer l.encs.Put(enc)
	out, err := enc.Encode(dst, symbols, indexes(s), l.table)
	if err != nil {
		return dst, fmt.Errorf("learned codec: %w", err)
	}
	return out, nil
}

// DecodeSymbols decodes the symbols of a latent of shape s.
func (l *Learned) DecodeSymbols(dst []int32, data []byte, s Shape) ([]int32, error) {
	if err := l.checkShape(s); err != nil {
		return dst, err
	}
	out, err := entropy.Decoder{}.Decode(dst[:0], data, indexes(s), l.table)
	if err != nil {
		return dst, corrupt(IDLearned, "%v", err)
	}
	return out, nil
}

// Decode implements Codec.
func (l *Learned) Decode(dst []float32, data []byte, s Shape) ([]float32, error) {
	sym, err := l.DecodeSymbols(nil, data, s)
	if err != nil {
		return dst, err
	}
	return l.Dequantize(dst, s, sym), nil
}
