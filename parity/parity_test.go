package parity

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/splitstream/splitstream/bundle"
	"github.com/splitstream/splitstream/models"
)

const shipped = "../models/zoo/fmnist-es-b0.11"

func TestShippedBundleMatchesItsReference(t *testing.T) {
	b, err := bundle.Load(shipped)
	if err != nil {
		t.Skipf("no shipped bundle: %v", err)
	}
	rep, err := Check(context.Background(), b, Options{Engines: []string{models.Native}, EngineOptions: models.Options{Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Graphs) != 2+len(b.Heads) {
		t.Fatalf("%d graphs checked, want encoder, trunk and %d heads", len(rep.Graphs), len(b.Heads))
	}
	for _, g := range rep.Graphs {
		if g.MaxAbsDiff > 1e-4 || g.MaxAbsRef == 0 {
			t.Errorf("%s: max |diff| %g, max |ref| %g", g.Graph, g.MaxAbsDiff, g.MaxAbsRef)
		}
	}
	if rep.CodecEqual != rep.Images || rep.CodecSymbolsEqual != rep.Images {
		t.Errorf("codec on the reference latents: %d strings, %d symbol sets of %d equal", rep.CodecEqual, rep.CodecSymbolsEqual, rep.Images)
	}
	s := rep.Strings[0]
	if s.EdgeInput != "image" || s.EdgeEqual != rep.Images || s.SymbolsDiffer != 0 {
		t.Errorf("edge strings %+v", s)
	}
	if rep.PreprocessMaxAbsDiff != 0 {
		t.Errorf("preprocessing differs from the reference input by %g", rep.PreprocessMaxAbsDiff)
	}
}

// copyBundle copies a bundle directory, applies edit to the copy and
// rewrites its content hash so that it loads.
func copyBundle(t *testing.T, src string, edit func(dir string)) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), filepath.Base(src))
	if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	edit(dir)
	h, err := bundle.ContentHash(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(m, []byte(`"hash": "`)) + len(`"hash": "`)
	j := i + bytes.IndexByte(m[i:], '"')
	m = append(m[:i:i], append([]byte(fmt.Sprintf("sha256:%x", h)), m[j:]...)...)
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), m, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestAChangedReferenceIsMeasured(t *testing.T) {
	if _, err := os.Stat(shipped); err != nil {
		t.Skip("no shipped bundle")
	}
	// Add 1 to the first element of reference image 0's latent, and 0.5 to
	// its first logit: the encoder's and the classification head's
	// differences must show it, and the codec must code another string.
	dir := copyBundle(t, shipped, func(dir string) {
		for name, delta := range map[string]float32{"0_latent.bin": 1, "0_logits.bin": 0.5} {
			p := filepath.Join(dir, "reference", name)
			d, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			v := math.Float32frombits(binary.LittleEndian.Uint32(d))
			binary.LittleEndian.PutUint32(d, math.Float32bits(v+delta))
			if err := os.WriteFile(p, d, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	})
	b, err := bundle.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Check(context.Background(), b, Options{EngineOptions: models.Options{Threads: 1}, TestSet: filepath.Join(shipped, "..", "testset")})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range rep.Graphs {
		switch g.Graph {
		case "encoder":
			if g.MaxAbsDiff < 0.99 {
				t.Errorf("encoder: max |diff| %g, want about 1", g.MaxAbsDiff)
			}
		case "head_classify":
			if g.MaxAbsDiff < 0.49 || g.Output != "logits" {
				t.Errorf("head_classify: max |diff| %g at %q, want about 0.5 at logits", g.MaxAbsDiff, g.Output)
			}
		default:
			if g.MaxAbsDiff > 1e-4 {
				t.Errorf("%s: max |diff| %g", g.Graph, g.MaxAbsDiff)
			}
		}
	}
	if rep.CodecSymbolsEqual != rep.Images-1 {
		t.Errorf("%d of %d symbol sets equal, want all but the changed one", rep.CodecSymbolsEqual, rep.Images)
	}
}
