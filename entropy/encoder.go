package entropy

import (
	"encoding/binary"
	"fmt"
	"math/bits"
)

// Encoder codes symbol streams. Its zero value is ready to use; it keeps its
// scratch buffer between calls, so reusing one Encoder does not allocate once
// the buffer has grown to the largest stream. An Encoder is not safe for
// concurrent use.
type Encoder struct {
	// buf is written backwards from its end: buf[pos:] holds the words
	// emitted so far.
	buf []byte
}

// Encode codes symbols[i] with row indexes[i] of t, appends the encoded
// string to dst and returns the extended slice. The bytes are exactly those
// of CompressAI's RansEncoder.encode_with_indexes with t's CDFs, lengths and
// offsets. It returns an error (and dst unchanged) if the slices differ in
// length, an index is not a row of t, or a symbol is outside its row's
// codable range (wrapping ErrSymbolRange).
func (e *Encoder) Encode(dst []byte, symbols, indexes []int32, t *Table) ([]byte, error) {
	if len(symbols) != len(indexes) {
		return dst, fmt.Errorf("entropy: encode: %d symbols but %d indexes", len(symbols), len(indexes))
	}
	if want := len(symbols)/2 + 64; cap(e.buf) < want {
		e.buf = make([]byte, want)
	}
	buf := e.buf[:cap(e.buf)]
	pos := len(buf)
	rows, enc := t.rows, t.enc
	x := uint64(ransL)

	for i := len(symbols) - 1; i >= 0; i-- {
		ri := indexes[i]
		if uint32(ri) >= uint32(len(rows)) {
			return dst, fmt.Errorf("entropy: encode: symbol %d: index %d is not a row of the table (%d rows)", i, ri, len(rows))
		}
		r := &rows[ri]
		v := int64(symbols[i]) - int64(r.offset)
		k := r.base + int32(v)
		if uint64(v) >= uint64(r.maxValue) {
			// Escape: bypass-code raw in 4-bit chunks, pushed in reverse of
			// the order the decoder reads them, then the escape symbol.
			raw, err := escapeRaw(symbols[i], r)
			if err != nil {
				return dst, fmt.Errorf("entropy: encode: symbol %d: %w", i, err)
			}
			if pos < 4*(maxBypassChunks+2) {
				buf, pos = e.grow(pos)
			}
			n := (bits.Len32(raw) + bypassBits - 1) / bypassBits
			for j := n - 1; j >= 0; j-- {
				x, pos = putBits(buf, pos, x, (raw>>(j*bypassBits))&bypassMask)
			}
			x, pos = putBits(buf, pos, x, uint32(n)) // n <= 7: a single count chunk
			k = r.base + r.maxValue
		}
		s := enc[k]
		if x >= uint64(1<<Precision-s.cmpl)<<(63-Precision) {
			if pos < 4 {
				buf, pos = e.grow(pos)
			}
			pos -= 4
			binary.LittleEndian.PutUint32(buf[pos:], uint32(x))
			x >>= 32
		}
		q, _ := bits.Mul64(x, s.rcp)
		x += uint64(s.bias) + (q>>s.shift)*uint64(s.cmpl)
	}

	if pos < 8 {
		buf, pos = e.grow(pos)
	}
	pos -= 8
	binary.LittleEndian.PutUint64(buf[pos:], x)
	return append(dst, buf[pos:]...), nil
}

// escapeRaw returns the bypass value of a symbol outside row r's in-range
// symbols, or an error if the format cannot carry it.
func escapeRaw(sym int32, r *row) (uint32, error) {
	v, raw := int64(sym)-int64(r.offset), int64(0)
	if v < 0 {
		raw = -2*v - 1
	} else {
		raw = 2 * (v - int64(r.maxValue))
	}
	if raw > maxRaw {
		return 0, fmt.Errorf("%w: %d is more than 2^27 outside [%d, %d], the in-range symbols of its row",
			ErrSymbolRange, sym, r.offset, int64(r.offset)+int64(r.maxValue)-1)
	}
	return uint32(raw), nil
}

// putBits codes a 4-bit value with probability 1/16 (CompressAI's
// Rans64EncPutBits). The caller ensures buf has room below pos.
func putBits(buf []byte, pos int, x uint64, val uint32) (uint64, int) {
	if x >= 1<<(63-bypassBits) { // ((L >> 16) << 32) * (1 << (16 - 4))
		pos -= 4
		binary.LittleEndian.PutUint32(buf[pos:], uint32(x))
		x >>= 32
	}
	return x<<bypassBits | uint64(val), pos
}

// grow doubles the scratch buffer, keeping the words written so far at its
// end, and returns it with the new write position.
func (e *Encoder) grow(pos int) ([]byte, int) {
	old := e.buf[:cap(e.buf)]
	nb := make([]byte, 2*len(old)+64)
	used := len(old) - pos
	copy(nb[len(nb)-used:], old[pos:])
	e.buf = nb
	return nb, len(nb) - used
}
