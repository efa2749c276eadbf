package sweep

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/splitstream/splitstream/bundle"
	"github.com/splitstream/splitstream/bundle/bundletest"
	"github.com/splitstream/splitstream/models"
)

// fixture is a split bundle (bundle/bundletest), a full bundle whose
// trunk is the split bundle's encoder and trunk in one graph, and a shared
// test set of n random 16 x 16 images with ground truth.
type fixture struct {
	split, full *bundle.Bundle
	engines     *bundletest.Engines
}

// open opens the graphs: the testbundle's, plus full_trunk.
func (f *fixture) open(path string) (models.Engine, error) {
	if filepath.Base(path) != "full_trunk.onnx" {
		return f.engines.Open(path)
	}
	dir := filepath.Dir(path)
	enc, err := f.engines.Open(filepath.Join(dir, "encoder.onnx"))
	if err != nil {
		return nil, err
	}
	trunk, err := f.engines.Open(filepath.Join(dir, "trunk.onnx"))
	if err != nil {
		return nil, err
	}
	return chain{enc, trunk}, nil
}

// chain runs the encoder, then the trunk on its latent.
type chain struct{ enc, trunk models.Engine }

func (c chain) Inputs() []models.TensorInfo  { return c.enc.Inputs() }
func (c chain) Outputs() []models.TensorInfo { return c.trunk.Outputs() }
func (c chain) Close() error                 { return nil }
func (c chain) Run(ctx context.Context, in map[string]models.Tensor) (map[string]models.Tensor, error) {
	y, err := c.enc.Run(ctx, in)
	if err != nil {
		return nil, err
	}
	return c.trunk.Run(ctx, map[string]models.Tensor{"latent": y["latent"]})
}

// seal rewrites dir/manifest.json with the given replacements and a fresh
// content hash.
func seal(t *testing.T, dir string, repl ...string) {
	t.Helper()
	path := filepath.Join(dir, "manifest.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	s := strings.NewReplacer(append(repl, fmt.Sprint(m["hash"]), "")...).Replace(string(raw))
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := bundle.ContentHash(dir)
	if err != nil {
		t.Fatal(err)
	}
	s = strings.Replace(s, `"hash": ""`, `"hash": "sha256:`+hex.EncodeToString(h[:])+`"`, 1)
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func newFixture(t *testing.T, n int) *fixture {
	t.Helper()
	root := t.TempDir()
	splitDir, fullDir, tsDir := filepath.Join(root, "split"), filepath.Join(root, "full"), filepath.Join(root, "testset")
	if err := bundletest.Write(splitDir, "tb-split"); err != nil {
		t.Fatal(err)
	}
	seal(t, splitDir, `"testset": ""`, `"testset": "../testset"`)
	// The full bundle: the split manifest without latent, codec, entropy
	// and encoder, with an image trunk.
	if err := bundletest.Write(fullDir, "tb-full"); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"encoder.onnx", "entropy.json"} {
		os.Remove(filepath.Join(fullDir, f))
	}
	os.WriteFile(filepath.Join(fullDir, "full_trunk.onnx"), []byte("graph"), 0o644)
	os.Remove(filepath.Join(fullDir, "trunk.onnx"))
	seal(t, fullDir,
		`"testset": ""`, `"testset": "../testset"`,
		`"kind": "split"`, `"kind": "full"`,
		` "latent": {"channels": 4, "height": 4, "width": 4},`+"\n", "",
		` "codec": "factorized-rans-v1",`+"\n", "",
		` "entropy": {"file": "entropy.json", "precision": 16},`+"\n", "",
		` "encoder": {"file": "encoder.onnx", "input": "image", "output": "latent"},`+"\n", "",
		`"trunk": {"file": "trunk.onnx", "input": "latent"`, `"trunk": {"file": "full_trunk.onnx", "input": "image"`,
	)
	writeTestSet(t, tsDir, n)
	f := &fixture{engines: &bundletest.Engines{}}
	var err error
	if f.split, err = bundle.Load(splitDir); err != nil {
		t.Fatal(err)
	}
	if f.full, err = bundle.Load(fullDir); err != nil {
		t.Fatal(err)
	}
	return f
}

// writeTestSet writes n images of coloured blocks on a noisy background,
// labelled with the brightest channel, with a box and mask per block.
func writeTestSet(t *testing.T, dir string, n int) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	type entry struct {
		File  string       `json:"file"`
		Label int          `json:"label"`
		Boxes [][5]float64 `json:"boxes"`
		Mask  string       `json:"mask"`
	}
	var ims []entry
	const s = bundletest.Size
	for i := range n {
		img := image.NewRGBA(image.Rect(0, 0, s, s))
		mask := image.NewGray(image.Rect(0, 0, s, s))
		for p := range s * s {
			img.Pix[4*p], img.Pix[4*p+1], img.Pix[4*p+2], img.Pix[4*p+3] = uint8(rng.IntN(60)), uint8(rng.IntN(60)), uint8(rng.IntN(60)), 255
		}
		cls := rng.IntN(3)
		x0, y0 := rng.IntN(8), rng.IntN(8)
		c := color.RGBA{A: 255}
		v := uint8(150 + rng.IntN(100))
		switch cls {
		case 0:
			c.R = v
		case 1:
			c.G = v
		default:
			c.B = v
		}
		for y := y0; y < y0+8; y++ {
			for x := x0; x < x0+8; x++ {
				img.Set(x, y, c)
				mask.SetGray(x, y, color.Gray{Y: uint8(cls + 1)})
			}
		}
		name, mname := fmt.Sprintf("scene_%04d.png", i), fmt.Sprintf("mask_%04d.png", i)
		for file, im := range map[string]image.Image{name: img, mname: mask} {
			var buf bytes.Buffer
			if err := png.Encode(&buf, im); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, file), buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		ims = append(ims, entry{File: name, Label: cls, Mask: mname,
			Boxes: [][5]float64{{float64(x0), float64(y0), float64(x0 + 8), float64(y0 + 8), float64(cls)}}})
	}
	labels, _ := json.Marshal(map[string]any{"labels": bundletest.Labels, "images": ims})
	if err := os.WriteFile(filepath.Join(dir, "labels.json"), labels, 0o644); err != nil {
		t.Fatal(err)
	}
}
