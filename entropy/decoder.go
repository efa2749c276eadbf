package entropy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// ErrCorrupt is wrapped by decoder errors for data that no encoder produced
// for these indexes: truncated, with trailing words, or otherwise invalid.
var ErrCorrupt = errors.New("entropy: corrupt rANS data")

// Decoder decodes symbol streams. It holds no state between calls; its zero
// value is ready to use and it is safe for concurrent use.
type Decoder struct{}

// Decode decodes len(indexes) symbols from data, symbol i with row
// indexes[i] of t, appends them to dst and returns the extended slice. It
// reverses CompressAI's RansDecoder.decode_with_indexes and also checks that
// data holds nothing more and ends in the encoder's initial state. It returns
// an error (and dst unchanged) if an index is not a row of t, or one wrapping
// ErrCorrupt if the data is invalid. It never panics on any input.
func (Decoder) Decode(dst []int32, data []byte, indexes []int32, t *Table) ([]int32, error) {
	if len(data) < 8 || len(data)%4 != 0 {
		return dst, fmt.Errorf("%w: length %d is not 8 plus a multiple of 4", ErrCorrupt, len(data))
	}
	x := binary.LittleEndian.Uint64(data)
	if x < ransL || x >= 1<<63 {
		return dst, fmt.Errorf("%w: initial state %#x outside [2^31, 2^63)", ErrCorrupt, x)
	}
	p := 8
	rows, cdf, lut := t.rows, t.cdf, t.lut
	n0 := len(dst)
	dst = slices.Grow(dst, len(indexes))
	out := dst[n0 : n0+len(indexes)]

	for i, ri := range indexes {
		if uint32(ri) >= uint32(len(rows)) {
			return dst[:n0], fmt.Errorf("entropy: decode: symbol %d: index %d is not a row of the table (%d rows)", i, ri, len(rows))
		}
		r := &rows[ri]
		cum := uint32(x) & precisionMask
		// The row's last entry is 1<<16 > cum, so the scan stays in the row.
		s := r.base + int32(lut[uint32(r.lut)+cum>>lutShift])
		for cdf[s+1] <= cum {
			s++
		}
		start := cdf[s]
		x = uint64(cdf[s+1]-start)*(x>>Precision) + uint64(cum-start)
		if x < ransL {
			if p > len(data)-4 {
				return dst[:n0], fmt.Errorf("%w: truncated at symbol %d", ErrCorrupt, i)
			}
			x = x<<32 | uint64(binary.LittleEndian.Uint32(data[p:]))
			p += 4
		}
		v := s - r.base
		if v == r.maxValue {
			var sym int32
			var err error
			if sym, x, p, err = decodeEscape(data, p, x, r); err != nil {
				return dst[:n0], fmt.Errorf("%w: symbol %d: %v", ErrCorrupt, i, err)
			}
			out[i] = sym
			continue
		}
		out[i] = v + r.offset
	}
	if p != len(data) {
		return dst[:n0], fmt.Errorf("%w: %d trailing bytes after the last symbol", ErrCorrupt, len(data)-p)
	}
	if x != ransL {
		return dst[:n0], fmt.Errorf("%w: final state %#x is not the initial state 2^31", ErrCorrupt, x)
	}
	return dst[:n0+len(indexes)], nil
}

// decodeEscape reads the bypass code after an escape symbol of row r and
// returns the symbol with the new state and read position.
func decodeEscape(data []byte, p int, x uint64, r *row) (int32, uint64, int, error) {
	var err error
	var n uint32
	if n, x, p, err = getBits(data, p, x); err != nil {
		return 0, x, p, err
	}
	// CompressAI reads further count chunks while a chunk is 15; any count
	// of 15 or more is beyond the 7 chunks the format carries.
	if n > maxBypassChunks {
		return 0, x, p, fmt.Errorf("bypass count %d exceeds %d chunks", n, maxBypassChunks)
	}
	raw, c := uint32(0), uint32(0)
	for j := range n {
		if c, x, p, err = getBits(data, p, x); err != nil {
			return 0, x, p, err
		}
		raw |= c << (j * bypassBits)
	}
	if n > 0 && c == 0 {
		return 0, x, p, errors.New("bypass value has a leading zero chunk")
	}
	var v int64
	if raw&1 != 0 {
		v = -int64(raw>>1) - 1
	} else {
		v = int64(raw>>1) + int64(r.maxValue)
	}
	sym := v + int64(r.offset)
	if sym != int64(int32(sym)) {
		return 0, x, p, fmt.Errorf("escaped symbol %d overflows int32", sym)
	}
	return int32(sym), x, p, nil
}

// getBits reads a 4-bit value coded with probability 1/16 (CompressAI's
// Rans64DecGetBits).
func getBits(data []byte, p int, x uint64) (uint32, uint64, int, error) {
	val := uint32(x) & bypassMask
	x >>= bypassBits
	if x < ransL {
		if p > len(data)-4 {
			return 0, x, p, errors.New("truncated in a bypass code")
		}
		x = x<<32 | uint64(binary.LittleEndian.Uint32(data[p:]))
		p += 4
	}
	return val, x, p, nil
}
