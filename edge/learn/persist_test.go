package learn

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// trained returns a learner that has learned n samples.
func trained(t testing.TB, cfg Config, n int) *Learner {
	l, err := New(testBundle, testShape, testLabels, cfg)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(31, 32))
	for i := range n {
		c := i % len(testLabels)
		if err := l.Learn(latentOf(rng, c), c); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

// TestRoundTrip saves and loads learners of both models: the loaded one
// predicts the same, marshals to the same bytes and, given the same
// samples, keeps learning exactly as the original does (its random state
// and counters travel too).
func TestRoundTrip(t *testing.T) {
	for _, cfg := range []Config{
		{Model: Pegasos, Buffer: 30, EpochEvery: 20},
		{Model: Logistic, Buffer: 30, EpochEvery: 20, Features: Features{Filters: 5, Seed: 7}},
	} {
		l := trained(t, cfg, 47)
		dir := t.TempDir()
		if err := l.Save(dir); err != nil {
			t.Fatal(err)
		}
		got, err := Load(dir, testBundle, testShape, Config{Buffer: 30})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Marshal(), l.Marshal()) {
			t.Fatalf("%v: the loaded model marshals differently", cfg.Model)
		}
		rng := rand.New(rand.NewPCG(33, 34))
		for i := range 25 {
			y := latentOf(rng, i%3)
			p1, _ := l.Predict(y)
			p2, _ := got.Predict(y)
			if p1 != p2 {
				t.Fatalf("%v: predictions differ: %+v, %+v", cfg.Model, p1, p2)
			}
			if err := l.Learn(y, i%3); err != nil {
				t.Fatal(err)
			}
			if err := got.Learn(y, i%3); err != nil {
				t.Fatal(err)
			}
		}
		a, b := l.Marshal(), got.Marshal()
		// The time spent differs; everything else must not.
		if !bytes.Equal(clearSpent(a), clearSpent(b)) {
			t.Fatalf("%v: after more samples, the original and the loaded learner differ", cfg.Model)
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 1 {
			t.Errorf("save left %d files in the directory, want 1", len(ents))
		}
	}
}

// spentOffset is where the time spent sits in a model file.
const spentOffset = 4 + 2 + 32 + 12 + 5 + 4 + 8 + 16 + 12 + 4 + 8 + 8 + 4

// clearSpent zeroes the time spent and the checksum, which covers it.
func clearSpent(b []byte) []byte {
	b = bytes.Clone(b)
	clear(b[spentOffset : spentOffset+8])
	clear(b[len(b)-4:])
	return b
}

// withCRC rewrites a model file's checksum, so that a change elsewhere
// reaches the parser's other checks.
func withCRC(b []byte) []byte {
	b = bytes.Clone(b)
	binary.LittleEndian.PutUint32(b[len(b)-4:], crc32.ChecksumIEEE(b[:len(b)-4]))
	return b
}

func TestRefusals(t *testing.T) {
	l := trained(t, Config{Buffer: 30, EpochEvery: 20}, 40)
	data := l.Marshal()
	other := testBundle
	other[31] = 9
	if _, err := Unmarshal(data, other, testShape, Config{}); !errors.Is(err, ErrOtherBundle) {
		t.Errorf("another bundle's model: %v, want ErrOtherBundle", err)
	}
	bad := bytes.Clone(data)
	bad[100] ^= 1
	for name, tc := range map[string]struct {
		data   []byte
		limits Config
	}{
		"flipped bit":           {bad, Config{}},
		"truncated":             {withCRC(data[:len(data)-20]), Config{}},
		"trailing bytes":        {withCRC(append(bytes.Clone(data), 0, 0, 0, 0)), Config{}},
		"buffer over the bound": {data, Config{Buffer: 29}},
		"classes over bound":    {data, Config{MaxClasses: 2}},
		"empty":                 {nil, Config{}},
	} {
		_, err := Unmarshal(tc.data, testBundle, testShape, tc.limits)
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := Unmarshal(data, testBundle, testShape, Config{}); err != nil {
		t.Fatalf("the file itself: %v", err)
	}
}

// TestLoadRefusesLargeFile checks that Load refuses a file larger than
// its bounds allow before reading it.
func TestLoadRefusesLargeFile(t *testing.T) {
	dir := t.TempDir()
	limits := Config{MaxClasses: 2, MaxFeatures: 4, Buffer: 1}
	f, err := os.Create(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(maxFileBytes(limits.withDefaults()) + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := Load(dir, testBundle, testShape, limits); err == nil {
		t.Fatal("an oversized file was accepted")
	}
}

// TestSaveKeepsOldOnFailure checks that a failed save leaves the previous
// model file as it was.
func TestSaveKeepsOldOnFailure(t *testing.T) {
	dir := t.TempDir()
	l := trained(t, Config{Buffer: 10, EpochEvery: 5}, 12)
	if err := l.Save(dir); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, FileName))
	// A directory in the way of the final name makes the rename fail.
	blocked := filepath.Join(t.TempDir(), "m")
	if err := os.MkdirAll(filepath.Join(blocked, FileName, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := l.Save(blocked); err == nil {
		t.Fatal("save over a directory succeeded")
	}
	if ents, _ := os.ReadDir(blocked); len(ents) != 1 {
		t.Errorf("a failed save left %d entries, want 1 (no temporary file)", len(ents))
	}
	after, _ := os.ReadFile(filepath.Join(dir, FileName))
	if !bytes.Equal(before, after) {
		t.Error("the first model file changed")
	}
}

// TestOpen starts a new learner in an empty directory and resumes a saved
// one.
func TestOpen(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, testBundle, testShape, testLabels, Config{Buffer: 10, EpochEvery: 5})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(35, 36))
	for range 7 {
		if err := l.Learn(latentOf(rng, 1), 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Save(dir); err != nil {
		t.Fatal(err)
	}
	l2, err := Open(dir, testBundle, testShape, testLabels, Config{Buffer: 10})
	if err != nil {
		t.Fatal(err)
	}
	if got := l2.Info().Samples; got != 7 {
		t.Errorf("resumed with %d samples, want 7", got)
	}
	other := testBundle
	other[0] = 0
	if _, err := Open(dir, other, testShape, testLabels, Config{Buffer: 10}); !errors.Is(err, ErrOtherBundle) {
		t.Errorf("open for another bundle: %v, want ErrOtherBundle", err)
	}
}

// FuzzLoad checks that the model-file parser never panics and never
// allocates past its bounds (the fuzzer's memory limit would catch it),
// and that what it accepts marshals back to the same bytes. Each input is
// tried as it is and with its checksum fixed, so that mutations reach the
// checks past the checksum.
func FuzzLoad(f *testing.F) {
	for _, cfg := range []Config{
		{Buffer: 4, EpochEvery: 3},
		{Model: Logistic, Buffer: 4, EpochEvery: 3, Features: Features{Filters: 2, Kernel: 1}},
	} {
		l := trained(f, cfg, 5)
		f.Add(l.Marshal())
	}
	f.Add([]byte("SSLM"))
	limits := Config{Buffer: 8, MaxClasses: 8, MaxFeatures: 64}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, d := range [][]byte{data, fixCRC(data)} {
			l, err := Unmarshal(d, testBundle, testShape, limits)
			if err != nil {
				continue
			}
			if got := l.Marshal(); !bytes.Equal(got, d) {
				t.Fatalf("accepted a file that marshals differently")
			}
			if _, err := l.Predict(make([]float32, testShape.Len())); err != nil {
				t.Fatal(err)
			}
			if err := l.Learn(make([]float32, testShape.Len()), 0); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func fixCRC(b []byte) []byte {
	if len(b) < 4 {
		return b
	}
	return withCRC(b)
}
