package codec

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/splitstream/splitstream/entropy"
)

// TestMaxEncodedLen encodes each codec's worst case (every latent symbol at
// the largest escape the coder takes, noise for the others, JPEG and WebP at
// quality 100) and checks that it stays within the bound.
func TestMaxEncodedLen(t *testing.T) {
	s := Shape{8, 12, 12}
	l := newTestLearned(t, s.C)
	// Every symbol escaped, as far outside its row as the coder allows.
	symbols := make([]int32, s.Len())
	for i := range symbols {
		symbols[i] = int32(1<<27-16) * int32(1-2*(i%2))
	}
	data, err := new(entropy.Encoder).Encode(nil, symbols, indexes(s), l.table)
	if err != nil {
		t.Fatal(err)
	}
	if bound := MaxEncodedLen(IDLearned, s); len(data) > bound {
		t.Errorf("learned: %d bytes over the bound %d", len(data), bound)
	} else {
		t.Logf("learned worst case %d bytes, bound %d", len(data), bound)
	}

	r := rand.New(rand.NewPCG(1, 2))
	noise := make([]float32, s.Len())
	for i := range noise {
		noise[i] = float32(r.NormFloat64() * 1000)
	}
	for _, c := range []Codec{Raw{}, NewInt8Zstd()} {
		data, err := c.Encode(nil, s, noise)
		if err != nil {
			t.Fatal(err)
		}
		if bound := MaxEncodedLen(c.ID(), s); len(data) > bound {
			t.Errorf("%v: %d bytes over the bound %d", c.ID(), len(data), bound)
		}
	}
	img := Shape{3, 64, 48}
	px := make([]float32, img.Len())
	for i := range px {
		px[i] = float32(r.IntN(256))
	}
	for _, spec := range []string{"png", "jpeg:100", "webp:100"} {
		c, err := Baseline(spec)
		if err != nil {
			t.Fatal(err)
		}
		data, err := c.Encode(nil, img, px)
		if err != nil {
			t.Fatal(err)
		}
		if bound := MaxEncodedLen(c.ID(), img); len(data) > bound {
			t.Errorf("%s: %d bytes over the bound %d", spec, len(data), bound)
		}
	}
	if MaxEncodedLen(ID(99), s) != 0 || MaxEncodedLen(IDRawF32, Shape{}) != 0 {
		t.Error("unknown codec or empty shape has a bound")
	}
}

// TestRawRefusesNonFinite checks that raw-f32 latents of NaN or Inf do not
// decode: no head should run on them.
func TestRawRefusesNonFinite(t *testing.T) {
	s := Shape{1, 1, 3}
	for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
		data, err := Raw{}.Encode(nil, s, []float32{1, bad, 2})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := (Raw{}).Decode(nil, data, s); err == nil {
			t.Errorf("%v decoded", bad)
		}
	}
}
