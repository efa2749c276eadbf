package entropy_test

import (
	"bytes"
	"errors"
	"os"
	"slices"
	"testing"

	"github.com/splitstream/splitstream/entropy"
	"github.com/splitstream/splitstream/entropy/vectors"
)

// vectorFile holds test vectors produced by CompressAI itself (see
// /work/shared/testvectors/README.md where it came from).
const vectorFile = "testdata/compressai-rans-a.json"

func loadVectors(tb testing.TB) *vectors.File {
	tb.Helper()
	data, err := os.ReadFile(vectorFile)
	if err != nil {
		tb.Fatal(err)
	}
	f, err := vectors.Parse(data)
	if err != nil {
		tb.Fatal(err)
	}
	return f
}

func TestVectorsPMFToCDF(t *testing.T) {
	f := loadVectors(t)
	if len(f.PMFToCDF) != len(f.CDFs) {
		t.Fatalf("%d pmf_to_cdf entries for %d table rows", len(f.PMFToCDF), len(f.CDFs))
	}
	for i, e := range f.PMFToCDF {
		got, err := entropy.PMFToQuantizedCDF(e.PMF, f.Precision)
		if err != nil {
			t.Errorf("entry %d: %v", i, err)
			continue
		}
		if !slices.Equal(got, e.CDF) {
			t.Errorf("entry %d: got %v, want %v", i, got, e.CDF)
		}
		// The table is built from these CDFs (row c = pmf_to_cdf[c].cdf).
		if !slices.Equal(got, f.CDFs[i][:f.Lengths[i]]) {
			t.Errorf("entry %d: differs from table row %d", i, i)
		}
	}
}

func TestVectorsEncodeDecode(t *testing.T) {
	f := loadVectors(t)
	var enc entropy.Encoder
	var dec entropy.Decoder
	for _, c := range f.Cases {
		got, err := enc.Encode(nil, c.Symbols, c.Indexes, f.Table)
		if err != nil {
			t.Errorf("%s: encode: %v", c.Name, err)
		} else if !bytes.Equal(got, c.Encoded) {
			t.Errorf("%s: encoded %d bytes, want CompressAI's %d (equal: %v)", c.Name, len(got), len(c.Encoded), bytes.Equal(got, c.Encoded))
		}
		syms, err := dec.Decode(nil, c.Encoded, c.Indexes, f.Table)
		if err != nil {
			t.Errorf("%s: decode: %v", c.Name, err)
		} else if !slices.Equal(syms, c.Symbols) {
			t.Errorf("%s: decoded symbols differ", c.Name)
		}
	}
}

// TestAppend checks that Encode and Decode append to dst and leave its
// prefix alone, and that one Encoder gives the same bytes on reuse.
func TestAppend(t *testing.T) {
	f := loadVectors(t)
	var enc entropy.Encoder
	var dec entropy.Decoder
	for range 2 {
		for _, c := range f.Cases {
			out, err := enc.Encode([]byte("pre"), c.Symbols, c.Indexes, f.Table)
			if err != nil || string(out[:3]) != "pre" || !bytes.Equal(out[3:], c.Encoded) {
				t.Fatalf("%s: Encode with a prefix: %v", c.Name, err)
			}
			syms, err := dec.Decode([]int32{-7}, c.Encoded, c.Indexes, f.Table)
			if err != nil || syms[0] != -7 || !slices.Equal(syms[1:], c.Symbols) {
				t.Fatalf("%s: Decode with a prefix: %v", c.Name, err)
			}
		}
	}
}

func TestNoAllocations(t *testing.T) {
	f := loadVectors(t)
	c := largestCase(t, f)
	var enc entropy.Encoder
	var dec entropy.Decoder
	buf, _ := enc.Encode(nil, c.Symbols, c.Indexes, f.Table)
	syms := make([]int32, 0, len(c.Symbols))
	if n := testing.AllocsPerRun(5, func() { buf, _ = enc.Encode(buf[:0], c.Symbols, c.Indexes, f.Table) }); n != 0 {
		t.Errorf("Encode with a reused Encoder and dst: %v allocations", n)
	}
	if n := testing.AllocsPerRun(5, func() { syms, _ = dec.Decode(syms[:0], c.Encoded, c.Indexes, f.Table) }); n != 0 {
		t.Errorf("Decode into a reused dst: %v allocations", n)
	}
}

// TestDecodeCorrupt damages valid streams in every way that must be caught.
func TestDecodeCorrupt(t *testing.T) {
	f := loadVectors(t)
	var dec entropy.Decoder
	for _, c := range f.Cases {
		data := c.Encoded
		// Every truncation of short streams; of long ones, the first and
		// last 40 bytes and every len/50th length between.
		for n := 0; n < len(data); n = nextCut(n, len(data)) {
			if _, err := dec.Decode(nil, data[:n], c.Indexes, f.Table); !errors.Is(err, entropy.ErrCorrupt) {
				t.Fatalf("%s: truncated to %d of %d bytes: got %v, want ErrCorrupt", c.Name, n, len(data), err)
			}
		}
		for _, tail := range [][]byte{{0}, {0, 0, 0, 0}, {1, 2, 3, 4, 5, 6, 7, 8}} {
			if _, err := dec.Decode(nil, append(slices.Clip(data), tail...), c.Indexes, f.Table); !errors.Is(err, entropy.ErrCorrupt) {
				t.Fatalf("%s: %d bytes appended: got %v, want ErrCorrupt", c.Name, len(tail), err)
			}
		}
		if len(c.Indexes) > 0 {
			if _, err := dec.Decode(nil, data, c.Indexes[1:], f.Table); !errors.Is(err, entropy.ErrCorrupt) {
				t.Errorf("%s: one symbol fewer: got %v, want ErrCorrupt", c.Name, err)
			}
			bad := slices.Clone(c.Indexes)
			bad[len(bad)/2] = int32(f.Table.Rows())
			if _, err := dec.Decode(nil, data, bad, f.Table); err == nil {
				t.Errorf("%s: index out of range accepted", c.Name)
			}
		}
		// A flipped bit either fails or decodes to symbols that re-encode
		// to the damaged bytes (then they are another valid stream).
		var enc entropy.Encoder
		for i := 0; i < len(data)*8; i += 1 + len(data)/16 {
			d := slices.Clone(data)
			d[i/8] ^= 1 << (i % 8)
			syms, err := dec.Decode(nil, d, c.Indexes, f.Table)
			if err != nil {
				continue
			}
			if re, err := enc.Encode(nil, syms, c.Indexes, f.Table); err != nil || !bytes.Equal(re, d) {
				t.Fatalf("%s: bit %d flipped: decoded without error but does not re-encode to the same bytes (%v)", c.Name, i, err)
			}
		}
	}
}

// TestDecodeNonCanonicalBypass builds, by hand, streams that CompressAI's
// decoder would read but its encoder never writes, and checks they are
// rejected: a bypass value with a leading zero chunk, and a chunk count of
// 8 or more.
func TestDecodeNonCanonicalBypass(t *testing.T) {
	// One row with only the escape symbol (frequency 1<<16): coding it leaves
	// the state unchanged, so the stream is the state built from the bypass
	// chunks alone: x = ((L<<4 | cN) << 4 | ...) read back from the lowest
	// chunk.
	tb, err := entropy.NewTable([][]int32{{0, 1 << 16}}, []int32{2}, []int32{0})
	if err != nil {
		t.Fatal(err)
	}
	state := func(chunks ...uint64) []byte { // chunks in decoding order
		x := uint64(1 << 31)
		for i := len(chunks) - 1; i >= 0; i-- {
			x = x<<4 | chunks[i]
		}
		b := make([]byte, 8)
		for i := range b {
			b[i] = byte(x >> (8 * i))
		}
		return b
	}
	var dec entropy.Decoder
	// Count 2, chunks 2 and 1: raw = 0x12, even, so the symbol is
	// offset + max_value + raw/2 = 9.
	if got, err := dec.Decode(nil, state(2, 2, 1), []int32{0}, tb); err != nil || got[0] != 0x12/2 {
		t.Fatalf("canonical code: got %v, %v; want [%d]", got, err, 0x12/2)
	}
	for name, data := range map[string][]byte{
		"leading zero chunk": state(2, 3, 0),
		"count 8":            state(8, 1, 1, 1, 1, 1, 1, 1),
		"count 15":           state(15, 0),
	} {
		if _, err := dec.Decode(nil, data, []int32{0}, tb); !errors.Is(err, entropy.ErrCorrupt) {
			t.Errorf("%s: got %v, want ErrCorrupt", name, err)
		}
	}
}

func nextCut(n, size int) int {
	if n < 40 || n >= size-40 {
		return n + 1
	}
	return min(n+size/50+1, size-40)
}

func largestCase(tb testing.TB, f *vectors.File) vectors.Case {
	var c vectors.Case
	for _, k := range f.Cases {
		if len(k.Symbols) > len(c.Symbols) {
			c = k
		}
	}
	if len(c.Symbols) == 0 {
		tb.Fatal("no case with symbols")
	}
	return c
}

// FuzzDecode decodes arbitrary bytes with arbitrary indexes (one byte each;
// values of 24 and more are not rows) against the vector table. Decoding
// must not panic, and whatever decodes must re-encode to the same bytes.
func FuzzDecode(f *testing.F) {
	v := loadVectors(f)
	for _, c := range v.Cases {
		if len(c.Symbols) > 6000 {
			continue
		}
		idx := make([]byte, len(c.Indexes))
		for i, r := range c.Indexes {
			idx[i] = byte(r)
		}
		f.Add(c.Encoded, idx)
	}
	var enc entropy.Encoder
	var dec entropy.Decoder
	f.Fuzz(func(t *testing.T, data, idx []byte) {
		indexes := make([]int32, len(idx))
		for i, b := range idx {
			indexes[i] = int32(b)
		}
		syms, err := dec.Decode(nil, data, indexes, v.Table)
		if err != nil {
			return
		}
		re, err := enc.Encode(nil, syms, indexes, v.Table)
		if err != nil {
			t.Fatalf("decoded symbols do not encode: %v", err)
		}
		if !bytes.Equal(re, data) {
			t.Fatalf("decoded symbols re-encode to other bytes")
		}
	})
}

func benchCase(b *testing.B) (*vectors.File, vectors.Case) {
	f := loadVectors(b)
	for _, c := range f.Cases {
		if c.Name == "latent_Cx55x55" {
			return f, c
		}
	}
	b.Fatal("no latent_Cx55x55 case")
	return nil, vectors.Case{}
}

func BenchmarkEncode(b *testing.B) {
	f, c := benchCase(b)
	var enc entropy.Encoder
	buf := make([]byte, 0, len(c.Encoded))
	b.ReportAllocs()
	b.SetBytes(int64(4 * len(c.Symbols)))
	for b.Loop() {
		var err error
		if buf, err = enc.Encode(buf[:0], c.Symbols, c.Indexes, f.Table); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)*float64(len(c.Symbols))/b.Elapsed().Seconds()/1e6, "Msym/s")
}

func BenchmarkDecode(b *testing.B) {
	f, c := benchCase(b)
	var dec entropy.Decoder
	syms := make([]int32, 0, len(c.Symbols))
	b.ReportAllocs()
	b.SetBytes(int64(4 * len(c.Symbols)))
	for b.Loop() {
		var err error
		if syms, err = dec.Decode(syms[:0], c.Encoded, c.Indexes, f.Table); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)*float64(len(c.Symbols))/b.Elapsed().Seconds()/1e6, "Msym/s")
}
