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
// an error (and dst with its original length) if an index is not a row of t,
// or one wrapping ErrCorrupt if the data is invalid. It never panics on any
// input and its time is linear in len(indexes).
func (Decoder) Decode(dst []int32, data []byte, indexes []int32, t *Table) ([]int32, error) {
	if len(data) < 8 || len(data)%4 != 0 {
		return dst, fmt.Errorf("%w: length %d is not 8 plus a multiple of 4", ErrCorrupt, len(data))
	}
	x := binary.LittleEndian.Uint64(data)
	if x < ransL || x >= 1<<63 {
		return dst, fmt.Errorf("%w: initial state %#x outside [2^31, 2^63)", ErrCorrupt, x)
	}
	p := 8
	n0 := len(dst)
	dst = slices.Grow(dst, len(indexes))
	out := dst[n0 : n0+len(indexes)]

	// The fast loop decodes while words are left; the rest (escapes, the
	// last symbols, bad indexes) are handled here, one symbol at a time.
	for i := 0; i < len(indexes); i++ {
		var escaped bool
		if x, p, i, escaped = t.decodeRun(x, data, p, indexes, out, i); i == len(indexes) {
			break
		}
		ri := indexes[i]
		if uint32(ri) >= uint32(len(t.rows)) {
			return dst[:n0], fmt.Errorf("entropy: decode: symbol %d: index %d is not a row of the table (%d rows)", i, ri, len(t.rows))
		}
		r := &t.rows[ri]
		s := r.maxValue
		if !escaped {
			// Every word is read: a renormalisation now means the data is
			// truncated.
			cum := uint32(x) & precisionMask
			var start, freq uint32
			s, start, freq = r.lookup(cum)
			if x = uint64(freq)*(x>>Precision) + uint64(cum-start); x < ransL {
				return dst[:n0], fmt.Errorf("%w: truncated at symbol %d", ErrCorrupt, i)
			}
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

// decodeRun decodes symbols from out[i] on while at least one word is left
// and their index is a row of t. It stops at the first symbol it cannot
// decode, or after decoding an escape symbol (escaped is then true), and
// returns the state, the read position and that symbol's position (or
// len(out)). It makes no calls, so that the state stays in registers.
func (t *Table) decodeRun(x uint64, data []byte, p int, indexes, out []int32, i int) (_ uint64, _ int, _ int, escaped bool) {
	rows := t.rows
	out = out[:len(indexes)]
	for ; i < len(indexes) && p <= len(data)-4; i++ {
		ri := int(indexes[i])
		if uint(ri) >= uint(len(rows)) {
			break
		}
		r := &rows[ri]
		// r.lookup, by hand: the compiler does not inline it.
		cum := uint32(x) & precisionMask
		e := &r.lut[(cum>>lutShift)&(1<<lutBits-1)]
		s, start, freq := int32(e.sym), uint32(e.start), e.freq
		if cum-start >= freq {
			s, start, freq = r.scan(s, cum)
		}
		x = uint64(freq)*(x>>Precision) + uint64(cum-start)
		// Renormalise without a hard-to-predict branch: load the next word
		// always, keep it only if the state needs it. b is 1 if x < L:
		// the state stays below 2^63 (the initial state is checked, a step
		// gives freq*(x>>16) + (cum-start) < freq*((x>>16)+1) <= 2^63, and
		// a renormalisation gives less than L<<32).
		b := (x - ransL) >> 63
		x = x<<(b<<5) | uint64(binary.LittleEndian.Uint32(data[p:]))&-b
		p += int(b << 2)
		if s == r.maxValue {
			return x, p, i, true
		}
		out[i] = s + r.offset
	}
	return x, p, i, false
}

// lookup returns the symbol of row r whose CDF interval holds cum, with its
// start and frequency.
func (r *row) lookup(cum uint32) (s int32, start, freq uint32) {
	e := &r.lut[(cum>>lutShift)&(1<<lutBits-1)]
	s, start, freq = int32(e.sym), uint32(e.start), e.freq
	if cum-start >= freq {
		s, start, freq = r.scan(s, cum)
	}
	return s, start, freq
}

// scan finds the symbol whose interval holds cum after symbol s, whose
// interval ends at or below cum. The row's last entry is 1<<16 > cum, so the
// scan stays in the row.
func (r *row) scan(s int32, cum uint32) (int32, uint32, uint32) {
	c := r.cdf
	k := int(s) + 1
	for k+1 < len(c) && c[k+1] <= cum {
		k++
	}
	return int32(k), c[k], c[k+1] - c[k]
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
