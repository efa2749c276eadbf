package entropy

import (
	"encoding/binary"
	"errors"
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"
	"testing"
)

// refEncode transcribes CompressAI's BufferedRansEncoder step by step, with
// plain division and no precomputation, as an independent reference.
func refEncode(symbols, indexes []int32, cdfs [][]int32, lengths, offsets []int32) []byte {
	type sym struct {
		start, freq uint64
		bypass      bool
	}
	var syms []sym
	for i := range symbols {
		c, mv := cdfs[indexes[i]], int64(lengths[indexes[i]]-2)
		v := int64(symbols[i]) - int64(offsets[indexes[i]])
		var raw uint32
		if v < 0 {
			raw, v = uint32(-2*v-1), mv
		} else if v >= mv {
			raw, v = uint32(2*(v-mv)), mv
		}
		syms = append(syms, sym{uint64(c[v]), uint64(c[v+1] - c[v]), false})
		if v == mv {
			n := 0
			for raw>>(n*4) != 0 {
				n++
			}
			val := n
			for val >= 15 {
				syms = append(syms, sym{15, 16, true})
				val -= 15
			}
			syms = append(syms, sym{uint64(val), 16, true})
			for j := 0; j < n; j++ {
				syms = append(syms, sym{uint64(raw>>(j*4)) & 15, 16, true})
			}
		}
	}
	x := uint64(1 << 31)
	var words []uint32 // in the order they are emitted
	for k := len(syms) - 1; k >= 0; k-- {
		s := syms[k]
		if s.bypass {
			if x >= (1<<31>>16)<<32*(1<<12) {
				words = append(words, uint32(x))
				x >>= 32
			}
			x = x<<4 | s.start
			continue
		}
		if x >= (1<<31>>16)<<32*s.freq {
			words = append(words, uint32(x))
			x >>= 32
		}
		x = (x/s.freq)<<16 + x%s.freq + s.start
	}
	out := binary.LittleEndian.AppendUint64(nil, x)
	for k := len(words) - 1; k >= 0; k-- {
		out = binary.LittleEndian.AppendUint32(out, words[k])
	}
	return out
}

func TestEncSymDivision(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for freq := uint32(1); freq <= 1<<Precision; freq++ {
		e := newEncSym(7, freq)
		xmax := uint64(freq) << 47
		xs := []uint64{ransL, ransL + 1, xmax - 1, xmax - 2, xmax - uint64(freq), xmax / 2}
		for range 4 {
			xs = append(xs, ransL+rng.Uint64N(xmax-ransL))
		}
		for _, x := range xs {
			hi, _ := bits.Mul64(x, e.rcp)
			got := x + uint64(e.bias) + (hi>>e.shift)*uint64(e.cmpl)
			want := (x/uint64(freq))<<16 + x%uint64(freq) + 7
			if got != want {
				t.Fatalf("freq %d, x %#x: fast step gives %#x, division gives %#x", freq, x, got, want)
			}
		}
	}
}

// randomTable returns a table with rows of many shapes: length 2 (escape
// only), 3 (one in-range symbol), short, long, peaked (from a Laplace pmf
// through PMFToQuantizedCDF) and with many frequency-1 symbols.
func randomTable(t testing.TB, rng *rand.Rand, rows int) (cdfs [][]int32, lengths, offsets []int32) {
	for r := range rows {
		var c []int32
		switch r % 6 {
		case 0:
			c = []int32{0, 1 << Precision}
		case 1:
			c = []int32{0, 1 + rng.Int32N(1<<Precision-1), 1 << Precision}
		case 2, 3:
			n := 2 + rng.IntN(r%2*3000+60)
			cuts := map[int32]bool{}
			for len(cuts) < n-1 {
				cuts[1+rng.Int32N(1<<Precision-1)] = true
			}
			c = []int32{0}
			for v := range cuts {
				c = append(c, v)
			}
			slices.Sort(c)
			c = append(c, 1<<Precision)
		case 4:
			c = make([]int32, 0, 2000)
			for i := range int32(1999) {
				c = append(c, i)
			}
			c = append(c, 1<<Precision)
		case 5:
			n := 3 + rng.IntN(200)
			pmf := make([]float32, n)
			b := 0.5 + 10*rng.Float64()
			for i := range pmf {
				d := float64(i - n/2)
				pmf[i] = float32(math.Exp(-math.Abs(d) / b))
			}
			var err error
			if c, err = PMFToQuantizedCDF(pmf, Precision); err != nil {
				t.Fatal(err)
			}
		}
		// Pad some rows, as CompressAI's table is padded to the longest.
		lengths = append(lengths, int32(len(c)))
		c = append(c, make([]int32, rng.IntN(3))...)
		cdfs = append(cdfs, c)
		offsets = append(offsets, rng.Int32N(2000)-1000)
	}
	return cdfs, lengths, offsets
}

// randomStream draws symbols for the table: mostly in range, some escaped
// near the row, some at the edges of the codable range.
func randomStream(rng *rand.Rand, tb *Table, n int) (symbols, indexes []int32) {
	for range n {
		r := rng.IntN(tb.Rows())
		rw := tb.rows[r]
		lo, hi := tb.SymbolRange(r)
		var s int32
		switch k := rng.IntN(100); {
		case k < 80 && rw.maxValue > 0:
			s = rw.offset + rng.Int32N(rw.maxValue)
		case k < 90:
			s = rw.offset - 1 - rng.Int32N(40)
		case k < 95:
			s = rw.offset + rw.maxValue + rng.Int32N(40)
		case k < 97:
			s = lo + rng.Int32N(3)
		case k < 99:
			s = hi - rng.Int32N(3)
		default:
			s = lo + rng.Int32N(hi-lo)
		}
		symbols = append(symbols, s)
		indexes = append(indexes, int32(r))
	}
	return symbols, indexes
}

func TestRoundTripRandomTables(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var enc Encoder
	var dec Decoder
	for iter := range 40 {
		cdfs, lengths, offsets := randomTable(t, rng, 1+rng.IntN(30))
		tb, err := NewTable(cdfs, lengths, offsets)
		if err != nil {
			t.Fatal(err)
		}
		symbols, indexes := randomStream(rng, tb, rng.IntN(3000))
		got, err := enc.Encode(nil, symbols, indexes, tb)
		if err != nil {
			t.Fatalf("iteration %d: %v", iter, err)
		}
		if want := refEncode(symbols, indexes, cdfs, lengths, offsets); !slices.Equal(got, want) {
			t.Fatalf("iteration %d: encoder differs from the reference (%d vs %d bytes)", iter, len(got), len(want))
		}
		back, err := dec.Decode(nil, got, indexes, tb)
		if err != nil {
			t.Fatalf("iteration %d: %v", iter, err)
		}
		if !slices.Equal(back, symbols) {
			t.Fatalf("iteration %d: decoded symbols differ", iter)
		}
	}
}

func TestSymbolRange(t *testing.T) {
	cdfs := [][]int32{{0, 100, 1 << Precision}, {0, 5, 10, 1 << Precision}, {0, 1 << Precision}}
	lengths := []int32{3, 4, 2}
	offsets := []int32{-1 << 31, 1<<31 - 2, 17}
	tb, err := NewTable(cdfs, lengths, offsets)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		row     int32
		sym     int32
		wantErr bool
	}{
		{0, -1 << 31, false},       // the row's only in-range symbol
		{0, -1<<31 + 1<<27, false}, // escaped, raw = 2^28-2
		{0, -1<<31 + 1<<27 + 1, true},
		{0, 1<<31 - 1, true},
		{1, 1<<31 - 1, false}, // in range
		{1, 1<<31 - 2, false},
		{1, 1<<31 - 2 - 1<<27, false},
		{1, 1<<31 - 3 - 1<<27, true},
		{1, -1 << 31, true},
		{2, 17, false},             // escape-only row: raw 0
		{2, 17 + 1<<27 - 1, false}, // raw 2^28-2
		{2, 17 + 1<<27, true},
		{2, 17 - 1<<27, false}, // raw 2^28-1
		{2, 16 - 1<<27, true},
	}
	var enc Encoder
	var dec Decoder
	for _, tt := range tests {
		lo, hi := tb.SymbolRange(int(tt.row))
		if inRange := tt.sym >= lo && tt.sym <= hi; inRange == tt.wantErr {
			t.Errorf("row %d: SymbolRange [%d, %d] disagrees about %d", tt.row, lo, hi, tt.sym)
		}
		out, err := enc.Encode(nil, []int32{tt.sym}, []int32{tt.row}, tb)
		if tt.wantErr {
			if !errors.Is(err, ErrSymbolRange) {
				t.Errorf("row %d, symbol %d: got %v, want ErrSymbolRange", tt.row, tt.sym, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("row %d, symbol %d: %v", tt.row, tt.sym, err)
			continue
		}
		if want := refEncode([]int32{tt.sym}, []int32{tt.row}, cdfs, lengths, offsets); !slices.Equal(out, want) {
			t.Errorf("row %d, symbol %d: bytes differ from the reference", tt.row, tt.sym)
		}
		back, err := dec.Decode(nil, out, []int32{tt.row}, tb)
		if err != nil || back[0] != tt.sym {
			t.Errorf("row %d, symbol %d: decoded %v, %v", tt.row, tt.sym, back, err)
		}
	}
}

func TestNewTableErrors(t *testing.T) {
	const one = 1 << Precision
	tests := []struct {
		name    string
		cdfs    [][]int32
		lengths []int32
		offsets []int32
	}{
		{"no rows", nil, nil, nil},
		{"lengths mismatch", [][]int32{{0, one}}, []int32{2, 2}, []int32{0}},
		{"offsets mismatch", [][]int32{{0, one}}, []int32{2}, nil},
		{"length 1", [][]int32{{0, one}}, []int32{1}, []int32{0}},
		{"length beyond row", [][]int32{{0, one}}, []int32{3}, []int32{0}},
		{"negative length", [][]int32{{0, one}}, []int32{-1}, []int32{0}},
		{"not starting at 0", [][]int32{{1, one}}, []int32{2}, []int32{0}},
		{"not ending at 2^16", [][]int32{{0, 5, one - 1}}, []int32{3}, []int32{0}},
		{"zero frequency", [][]int32{{0, 5, 5, one}}, []int32{4}, []int32{0}},
		{"decreasing", [][]int32{{0, 7, 5, one}}, []int32{4}, []int32{0}},
		{"used length ends early", [][]int32{{0, 5, one}}, []int32{2}, []int32{0}},
	}
	for _, tt := range tests {
		if _, err := NewTable(tt.cdfs, tt.lengths, tt.offsets); err == nil {
			t.Errorf("%s: NewTable accepted it", tt.name)
		}
	}
}

func TestPMFToQuantizedCDFErrors(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	tests := []struct {
		name      string
		pmf       []float32
		precision int
	}{
		{"empty", nil, 16},
		{"all zero", []float32{0, 0}, 16},
		{"too small to count", []float32{1e-9, 1e-9}, 16},
		{"negative", []float32{0.5, -0.1}, 16},
		{"nan", []float32{0.5, nan}, 16},
		{"inf", []float32{0.5, inf}, 16},
		{"too many symbols", make([]float32, 5), 2},
		{"precision 0", []float32{1}, 0},
		{"precision 17", []float32{1}, 17},
		{"scaled beyond 32 bits", []float32{1e10}, 16},
		{"total beyond 32 bits", []float32{60000, 60000}, 16},
	}
	for _, tt := range tests {
		if cdf, err := PMFToQuantizedCDF(tt.pmf, tt.precision); err == nil {
			t.Errorf("%s: got %v, want an error", tt.name, cdf)
		}
	}
}

func TestPMFToQuantizedCDFProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for range 200 {
		precision := 1 + rng.IntN(Precision)
		n := 1 + rng.IntN(min(300, 1<<precision))
		pmf := make([]float32, n)
		for i := range pmf {
			if rng.IntN(3) > 0 {
				pmf[i] = rng.Float32() * float32(rng.IntN(2)+1)
			}
		}
		pmf[rng.IntN(n)] = 0.5
		cdf, err := PMFToQuantizedCDF(pmf, precision)
		if err != nil {
			t.Fatalf("pmf %v: %v", pmf, err)
		}
		if len(cdf) != n+1 || cdf[0] != 0 || cdf[n] != 1<<precision {
			t.Fatalf("precision %d, pmf %v: bad cdf %v", precision, pmf, cdf)
		}
		for i := range n {
			if cdf[i+1] <= cdf[i] {
				t.Fatalf("precision %d, pmf %v: cdf %v has a zero frequency at %d", precision, pmf, cdf, i)
			}
		}
	}
}

// TestPMFToQuantizedCDFSteal checks the stealing order on a hand-computed
// case: 2^4 = 16 units over [0.5, 0, 0.25, 0, 0.25]: the scaled frequencies
// are 8, 0, 4, 0, 4; symbol 1 steals from symbol 2 (smallest above 1, first
// on ties) and symbol 3 then from symbol 2 again (3 < 4).
func TestPMFToQuantizedCDFSteal(t *testing.T) {
	cdf, err := PMFToQuantizedCDF([]float32{0.5, 0, 0.25, 0, 0.25}, 4)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int32{0, 8, 9, 11, 12, 16}; !slices.Equal(cdf, want) {
		t.Fatalf("got %v, want %v", cdf, want)
	}
}
