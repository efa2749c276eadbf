package entropy

import (
	"errors"
	"fmt"
	"math/bits"
)

// Precision is the CDF precision in bits: every CDF row ends at 1<<Precision.
const Precision = 16

const (
	precisionMask = 1<<Precision - 1
	ransL         = 1 << 31 // lower bound of the normalised state (RANS64_L)

	bypassBits = 4
	bypassMask = 1<<bypassBits - 1
	// maxBypassChunks is the most raw-value chunks a stream can carry: raw
	// values are below 2^28 (see the package doc).
	maxBypassChunks = 7
	maxRaw          = 1<<(maxBypassChunks*bypassBits) - 1
	maxEscape       = (maxRaw + 1) / 2 // 2^27: largest distance beyond a row's range

	// lutBits is log2 of the decoder's per-row lookup table size; the table
	// maps cum>>(Precision-lutBits) to the first candidate symbol.
	lutBits  = 8
	lutShift = Precision - lutBits
	// A lut entry packs a symbol's start (16 bits), frequency (17 bits) and
	// index in its row (16 bits).
	lutFreqShift = Precision
	lutFreqMask  = 1<<(Precision+1) - 1
	lutSymShift  = 2*Precision + 1
)

// ErrSymbolRange is wrapped by encoder errors for symbols that the format
// cannot carry (see the package doc for the accepted range).
var ErrSymbolRange = errors.New("entropy: symbol outside the codable range")

// Table is a validated set of quantized CDF rows, as CompressAI's
// EntropyBottleneck holds them after update(): per row the CDF, its length
// (_cdf_length) and the offset (_offset) that is the row's smallest in-range
// symbol. It also holds the per-symbol data the encoder and decoder use. A
// Table is immutable and safe for concurrent use.
type Table struct {
	rows []row
	// cdf holds every row's CDF (its length entries, ending at 1<<16) one
	// after another; row r starts at rows[r].base.
	cdf []uint32
	// enc[rows[r].base+s] holds the encoder's data for symbol s of row r.
	enc []encSym
	// lut[rows[r].lut+b] describes the symbol s of row r (relative to the
	// row) whose interval holds b<<lutShift: start | freq<<16 | s<<33.
	lut []uint64
}

type row struct {
	offset   int32
	maxValue int32 // index of the escape symbol: length - 2
	base     int32 // start of the row in cdf and enc
	lut      int32 // start of the row in lut
}

// encSym holds what encoding one symbol needs, without a division: the
// quotient x/freq is mulhi(x, rcp) >> shift (Alverson's exact reciprocal
// division, as in ryg_rans' Rans64EncSymbol), and the new state is
// x + bias + q*cmpl.
type encSym struct {
	rcp   uint64
	bias  uint32
	cmpl  uint32 // (1<<16) - freq
	shift uint32
	_     uint32
}

// NewTable validates the quantized CDF rows and precomputes the coder's data.
// Row r uses cdfs[r][:lengths[r]] (longer rows are padding and ignored); it
// must have at least 2 entries, start at 0, end at 1<<16 and increase
// strictly, so that every symbol, the escape symbol included, has a non-zero
// frequency. offsets[r] is the row's smallest in-range symbol.
func NewTable(cdfs [][]int32, lengths, offsets []int32) (*Table, error) {
	if len(cdfs) == 0 {
		return nil, errors.New("entropy: table has no rows")
	}
	if len(lengths) != len(cdfs) || len(offsets) != len(cdfs) {
		return nil, fmt.Errorf("entropy: table has %d cdf rows, %d lengths and %d offsets", len(cdfs), len(lengths), len(offsets))
	}
	if len(cdfs) > 1<<31-1 {
		return nil, errors.New("entropy: table has too many rows")
	}
	total := 0
	for r, c := range cdfs {
		n := int(lengths[r])
		if n < 2 || n > 1<<Precision+1 {
			return nil, fmt.Errorf("entropy: row %d: cdf length %d outside [2, %d]", r, n, 1<<Precision+1)
		}
		if n > len(c) {
			return nil, fmt.Errorf("entropy: row %d: cdf length %d but the row has %d entries", r, n, len(c))
		}
		if c[0] != 0 {
			return nil, fmt.Errorf("entropy: row %d: cdf starts at %d, not 0", r, c[0])
		}
		if c[n-1] != 1<<Precision {
			return nil, fmt.Errorf("entropy: row %d: cdf ends at %d, not %d", r, c[n-1], 1<<Precision)
		}
		for s := 0; s < n-1; s++ {
			if c[s+1] <= c[s] {
				return nil, fmt.Errorf("entropy: row %d: cdf not strictly increasing at entry %d (%d then %d)", r, s, c[s], c[s+1])
			}
		}
		total += n
		if total > 1<<31-1 {
			return nil, errors.New("entropy: table too large")
		}
	}

	t := &Table{
		rows: make([]row, len(cdfs)),
		cdf:  make([]uint32, 0, total),
		enc:  make([]encSym, 0, total),
		lut:  make([]uint64, 0, len(cdfs)<<lutBits),
	}
	for r, c := range cdfs {
		c = c[:lengths[r]]
		t.rows[r] = row{
			offset:   offsets[r],
			maxValue: int32(len(c) - 2),
			base:     int32(len(t.cdf)),
			lut:      int32(len(t.lut)),
		}
		for s, v := range c {
			t.cdf = append(t.cdf, uint32(v))
			var e encSym
			if s < len(c)-1 {
				e = newEncSym(uint32(v), uint32(c[s+1]-v))
			}
			t.enc = append(t.enc, e)
		}
		s := 0
		for b := 0; b < 1<<lutBits; b++ {
			for int(c[s+1]) <= b<<lutShift {
				s++
			}
			t.lut = append(t.lut, uint64(c[s])|uint64(c[s+1]-c[s])<<lutFreqShift|uint64(s)<<lutSymShift)
		}
	}
	return t, nil
}

// newEncSym returns the encoder data of a symbol with the given start and
// frequency (1 <= freq <= 1<<16).
func newEncSym(start, freq uint32) encSym {
	e := encSym{cmpl: 1<<Precision - freq}
	if freq == 1 {
		// The reciprocal of 1 does not fit; q = mulhi(x, 2^64-1) = x-1 for
		// x >= 1, and bias absorbs the difference: x + bias + (x-1)*(M-1)
		// = x*M + start.
		e.rcp = ^uint64(0)
		e.shift = 0
		e.bias = start + 1<<Precision - 1
		return e
	}
	// shift = ceil(log2(freq)); rcp = ceil(2^(shift+63) / freq), computed as
	// a 128-by-64-bit division.
	shift := uint32(bits.Len32(freq - 1))
	hi, lo := uint64(1)<<(shift-1), uint64(freq-1) // 2^(shift+63) + freq - 1
	rcp, _ := bits.Div64(hi, lo, uint64(freq))     // hi < freq: no overflow
	e.rcp = rcp
	e.shift = shift - 1
	e.bias = start
	return e
}

// Rows returns the number of rows.
func (t *Table) Rows() int { return len(t.rows) }

// SymbolRange returns the smallest and largest symbol that row r can code
// (see the package doc); r must be in [0, Rows()).
func (t *Table) SymbolRange(r int) (lo, hi int32) {
	rw := t.rows[r]
	l := int64(rw.offset) - maxEscape
	h := int64(rw.offset) + int64(rw.maxValue) + maxEscape - 1
	return int32(max(l, -1<<31)), int32(min(h, 1<<31-1))
}
