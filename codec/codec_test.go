package codec

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

// latent returns a latent-like tensor: smooth values with noise, some channels
// all zero (as dead channels of a trained bottleneck are).
func latent(s Shape, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 1))
	t := make([]float32, s.Len())
	plane := s.H * s.W
	for ch := range s.C {
		if ch%5 == 4 {
			continue
		}
		amp := 1 + 4*r.Float64()
		for i := range plane {
			t[ch*plane+i] = float32(amp * (math.Sin(float64(i)/7+float64(ch)) + 0.3*r.NormFloat64()))
		}
	}
	return t
}

// picture returns an RGB tensor of pixel values: gradients and a square.
func picture(s Shape) []float32 {
	t := make([]float32, s.Len())
	for y := range s.H {
		for x := range s.W {
			i := y*s.W + x
			t[i] = float32(255 * x / s.W)
			t[s.H*s.W+i] = float32(255 * y / s.H)
			v := float32(40)
			if x > s.W/4 && x < s.W/2 && y > s.H/3 && y < 2*s.H/3 {
				v = 220
			}
			t[2*s.H*s.W+i] = v
		}
	}
	return t
}

func psnr(a, b []float32) float64 {
	var se float64
	for i := range a {
		d := float64(a[i] - b[i])
		se += d * d
	}
	if se == 0 {
		return math.Inf(1)
	}
	return 10 * math.Log10(255*255/(se/float64(len(a))))
}

func TestLatentCodecs(t *testing.T) {
	s := Shape{12, 6, 6}
	in := latent(s, 3)
	tests := []struct {
		c Codec
		// maxErr returns the largest error allowed for element i.
		maxErr func(i int, out []float32) float64
	}{
		{Raw{}, func(int, []float32) float64 { return 0 }},
		{NewInt8Zstd(), func(i int, _ []float32) float64 {
			ch := i / (s.H * s.W)
			var m float64
			for _, v := range in[ch*s.H*s.W : (ch+1)*s.H*s.W] {
				m = math.Max(m, math.Abs(float64(v)))
			}
			return m / 127 / 2 * 1.0001
		}},
	}
	for _, tt := range tests {
		t.Run(tt.c.ID().String(), func(t *testing.T) {
			data, err := tt.c.Encode(nil, s, in)
			if err != nil {
				t.Fatal(err)
			}
			out, err := tt.c.Decode(nil, data, s)
			if err != nil {
				t.Fatal(err)
			}
			for i := range in {
				if d := math.Abs(float64(out[i] - in[i])); d > tt.maxErr(i, out) {
					t.Fatalf("element %d: %v -> %v, error %v over %v", i, in[i], out[i], d, tt.maxErr(i, out))
				}
			}
			t.Logf("%v: %d bytes for %d elements", tt.c.ID(), len(data), s.Len())
			if _, err := tt.c.Decode(nil, data[:len(data)-1], s); !errors.Is(err, ErrCorrupt) {
				t.Errorf("truncated payload: err = %v, want ErrCorrupt", err)
			}
			if _, err := tt.c.Decode(nil, data, Shape{s.C, s.H, s.W + 1}); !errors.Is(err, ErrCorrupt) {
				t.Errorf("wrong shape: err = %v, want ErrCorrupt", err)
			}
		})
	}
}

func TestImageCodecs(t *testing.T) {
	s := Shape{3, 48, 64}
	in := picture(s)
	tests := []struct {
		spec    string
		minPSNR float64
	}{
		{"png", math.Inf(1)},
		{"jpeg:90", 30},
		{"jpeg:20", 24},
		{"webp:75", 24},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			c, err := Baseline(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			data, err := c.Encode(nil, s, in)
			if err != nil {
				t.Fatal(err)
			}
			out, err := c.Decode(nil, data, s)
			if err != nil {
				t.Fatal(err)
			}
			p := psnr(in, out)
			t.Logf("%s: %d bytes, PSNR %.1f dB", tt.spec, len(data), p)
			if p < tt.minPSNR {
				t.Fatalf("PSNR %.1f dB under %.1f", p, tt.minPSNR)
			}
			if _, err := c.Decode(nil, data, Shape{3, s.H + 1, s.W}); !errors.Is(err, ErrCorrupt) {
				t.Errorf("wrong size: err = %v, want ErrCorrupt", err)
			}
			if _, err := c.Decode(nil, data[:len(data)/2], s); !errors.Is(err, ErrCorrupt) {
				t.Errorf("truncated: err = %v, want ErrCorrupt", err)
			}
		})
	}
}

func TestBaselineSpecs(t *testing.T) {
	for spec, want := range map[string]ID{"raw-f32": IDRawF32, "int8-zstd": IDInt8Zstd, "png": IDPNG, "jpeg": IDJPEG, "webp:50": IDWebP} {
		c, err := Baseline(spec)
		if err != nil || c.ID() != want {
			t.Errorf("Baseline(%q) = %v, %v; want %v", spec, c, err, want)
		}
	}
	for _, spec := range []string{"gif", "jpeg:0", "jpeg:101", "png:50", "raw-f32:3"} {
		if _, err := Baseline(spec); err == nil {
			t.Errorf("Baseline(%q) accepted", spec)
		}
	}
}

// FuzzDecode feeds arbitrary payloads to every baseline decoder: they must
// return an error or a tensor of the right size, never panic.
func FuzzDecode(f *testing.F) {
	s := Shape{3, 8, 8}
	codecs := []Codec{Raw{}, NewInt8Zstd()}
	for _, spec := range []string{"png", "jpeg", "webp"} {
		c, err := Baseline(spec)
		if err != nil {
			f.Fatal(err)
		}
		codecs = append(codecs, c)
	}
	for i, c := range codecs {
		data, err := c.Encode(nil, s, picture(s))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(i), data)
	}
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		c := codecs[int(which)%len(codecs)]
		out, err := c.Decode(nil, data, s)
		if err == nil && len(out) != s.Len() {
			t.Fatalf("%v decoded %d elements, want %d", c.ID(), len(out), s.Len())
		}
	})
}
