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
	rows := t.rows
	n0 := len(dst)
	dst = slices.Grow(dst, len(indexes))
	out := dst[n0 : n0+len(indexes)]

	// Fast loop, while at least one word is left: the renormalisation loads
	// the next word unconditionally and keeps it only if the state needs it,
	// which saves a hard-to-predict branch.
	i := 0
	for ; i < len(indexes) && p <= len(data)-4; i++ {
		ri := indexes[i]
		if uint32(ri) >= uint32(len(rows)) {
			return dst[:n0], errIndex(i, ri, len(rows))
		}
		r := &rows[ri]
		cum := uint32(x) & precisionMask
		s, start, freq := t.lookup(r, cum)
		x = uint64(freq)*(x>>Precision) + uint64(cum-start)
		next := x<<32 | uint64(binary.LittleEndian.Uint32(data[p:]))
		if x < ransL {
			x = next
			p += 4
		}
		if s == r.maxValue {
			var err error
			if s, x, p, err = decodeEscape(data, p, x, r); err != nil {
				return dst[:n0], fmt.Errorf("%w: symbol %d: %v", ErrCorrupt, i, err)
			}
			out[i] = s
			continue
		}
		out[i] = s + r.offset
	}
	// The last symbols, once every word is read: a renormalisation now means
	// the data is truncated.
	for ; i < len(indexes); i++ {
		ri := indexes[i]
		if uint32(ri) >= uint32(len(rows)) {
			return dst[:n0], errIndex(i, ri, len(rows))
		}
		r := &rows[ri]
		cum := uint32(x) & precisionMask
		s, start, freq := t.lookup(r, cum)
		x = uint64(freq)*(x>>Precision) + uint64(cum-start)
		if x < ransL {
			return dst[:n0], fmt.Errorf("%w: truncated at symbol %d", ErrCorrupt, i)
		}
		if s == r.maxValue {
			var err error
			if s, x, p, err = decodeEscape(data, p, x, r); err != nil {
				return dst[:n0], fmt.Errorf("%w: symbol %d: %v", ErrCorrupt, i, err)
			}
			out[i] = s
			continue
		}
		out[i] = s + r.offset
	}
	if p != len(data) {
		return dst[:n0], fmt.Errorf("%w: %d trailing bytes after the last symbol", ErrCorrupt, len(data)-p)
	}
	if x != ransL {
		return dst[:n0], fmt.Errorf("%w: final state %#x is not the initial state 2^31", ErrCorrupt, x)
	}
	return dst[:n0+len(indexes)], nil
}

// lookup returns the symbol of row r (relative to the row) whose CDF
// interval holds cum, with its start and frequency.
func (t *Table) lookup(r *row, cum uint32) (s int32, start, freq uint32) {
	e := t.lut[uint32(r.lut)+cum>>lutShift]
	s, start, freq = int32(e>>lutSymShift), uint32(e)&precisionMask, uint32(e>>lutFreqShift)&lutFreqMask
	if cum-start >= freq {
		// The bucket holds more than one symbol: scan on. The row's last
		// entry is 1<<16 > cum, so the scan stays in the row.
		k := r.base + s + 1
		for t.cdf[k+1] <= cum {
			k++
		}
		s, start, freq = k-r.base, t.cdf[k], t.cdf[k+1]-t.cdf[k]
	}
	return s, start, freq
}

func errIndex(i int, ri int32, rows int) error {
	return fmt.Errorf("entropy: decode: symbol %d: index %d is not a row of the table (%d rows)", i, ri, rows)
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
