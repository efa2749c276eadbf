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
	x := uint64(ransL)

	// The fast loop codes in-range symbols; the rest (escapes, a full
	// buffer, bad indexes) are handled here, one symbol at a time.
	n := len(symbols)
	for {
		x, pos, n = encodeRun(x, buf, pos, symbols[:n], indexes[:n], t.rows)
		if n == 0 {
			break
		}
		if pos < 4*(maxBypassChunks+2) {
			buf, pos = e.grow(pos)
			continue
		}
		i := n - 1
		ri := indexes[i]
		if uint32(ri) >= uint32(len(t.rows)) {
			return dst, fmt.Errorf("entropy: encode: symbol %d: index %d is not a row of the table (%d rows)", i, ri, len(t.rows))
		}
		r := &t.rows[ri]
		if v := int64(symbols[i]) - int64(r.offset); uint64(v) >= uint64(r.maxValue) {
			var err error
			if x, pos, err = escape(x, buf, pos, symbols[i], r); err != nil {
				return dst, fmt.Errorf("entropy: encode: symbol %d: %w", i, err)
			}
			x, pos = putSymbol(x, buf, pos, &r.enc[r.maxValue])
		} else {
			x, pos = putSymbol(x, buf, pos, &r.enc[v])
		}
		n--
	}

	if pos < 8 {
		buf, pos = e.grow(pos)
	}
	pos -= 8
	binary.LittleEndian.PutUint64(buf[pos:], x)
	return append(dst, buf[pos:]...), nil
}

// encodeRun codes symbols from last to first while they are in range of
// their row and buf has room below pos, and returns the state, the position
// and how many symbols are left (the next to code is symbols[n-1]). It makes
// no calls, so that the state stays in registers.
func encodeRun(x uint64, buf []byte, pos int, symbols, indexes []int32, rows []row) (_ uint64, _ int, n int) {
	n = len(symbols)
	indexes = indexes[:n]
	for n > 0 && pos >= 4 {
		ri := int(indexes[n-1])
		if uint(ri) >= uint(len(rows)) {
			break
		}
		r := &rows[ri]
		v := int64(symbols[n-1]) - int64(r.offset)
		if uint64(v) >= uint64(len(r.enc)-1) { // r.enc ends with the escape symbol
			break
		}
		x, pos = putSymbol(x, buf, pos, &r.enc[v])
		n--
	}
	return x, pos, n
}

// putSymbol codes one symbol (Rans64EncPutSymbol); buf must have room for a
// word below pos. It renormalises without a hard-to-predict branch: it
// always stores the state's low word below pos and keeps it only if the
// state is too large for the symbol.
func putSymbol(x uint64, buf []byte, pos int, s *encSym) (uint64, int) {
	binary.LittleEndian.PutUint32(buf[pos-4:], uint32(x))
	if x >= uint64(1<<Precision-uint32(s.cmpl))<<(63-Precision) {
		x >>= 32
		pos -= 4
	}
	q, _ := bits.Mul64(x, s.rcp)
	return x + uint64(s.bias) + (q>>(s.shift&63))*uint64(s.cmpl), pos
}

// escape bypass-codes a symbol outside row r's in-range symbols: the raw
// value's 4-bit chunks, pushed in reverse of the order the decoder reads
// them, then their count. The caller then codes the escape symbol. buf must
// have room for 8 words below pos.
func escape(x uint64, buf []byte, pos int, sym int32, r *row) (uint64, int, error) {
	raw, err := escapeRaw(sym, r)
	if err != nil {
		return x, pos, err
	}
	n := (bits.Len32(raw) + bypassBits - 1) / bypassBits
	for j := n - 1; j >= 0; j-- {
		x, pos = putBits(buf, pos, x, (raw>>(j*bypassBits))&bypassMask)
	}
	x, pos = putBits(buf, pos, x, uint32(n)) // n <= 7: a single count chunk
	return x, pos, nil
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
