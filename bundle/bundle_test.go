package bundle

import (
	"encoding/json"
	"image"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sampleManifest = `{
  "schema_version": 1, "name": "fmnist-es-b1", "kind": "split",
  "input": {"height": 96, "width": 96, "channels": 3, "layout": "NCHW", "scale": 255.0,
            "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]},
  "latent": {"channels": 2, "height": 12, "width": 12},
  "codec": "factorized-rans-v1",
  "entropy": {"file": "entropy.json", "precision": 16},
  "encoder": {"file": "encoder.onnx", "input": "image", "output": "latent"},
  "cloud": {"layout": "per-head"},
  "heads": [
    {"name": "classify", "task": "classification", "file": "head_classify.onnx", "input": "latent",
     "outputs": ["logits"], "labels": ["a", "b", "c"], "postprocess": {"top_k": 5}},
    {"name": "detect", "task": "detection", "file": "head_detect.onnx", "input": "latent",
     "outputs": ["heatmap", "size", "offset"], "labels": ["a", "b", "c"],
     "postprocess": {"decoder": "centernet", "stride": 8, "heatmap_activation": "sigmoid",
                     "max_detections": 20, "score_threshold": 0.05, "nms_iou": 0.5, "peak_kernel": 3}},
    {"name": "segment", "task": "segmentation", "file": "head_segment.onnx", "input": "latent",
     "outputs": ["mask_logits"], "labels": ["background", "a", "b", "c"]}
  ],
  "metrics": {"top1": 0.8, "map50": 0.5, "miou": 0.6, "bytes_per_image": 300, "images": 10, "engine": "pytorch"},
  "testset": "../testset",
  "hash": "sha256:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
}`

func TestParseManifest(t *testing.T) {
	m, err := ParseManifest([]byte(sampleManifest))
	if err != nil {
		t.Fatal(err)
	}
	if h := m.Head(TaskClassification); h == nil || h.TopK != 3 {
		t.Fatalf("classification head %+v: top-k should be clamped to the 3 labels", h)
	}
	if d := m.Head(TaskDetection).Detect; d == nil || d.Stride != 8 || d.MaxDetections != 20 {
		t.Fatalf("detection params %+v", d)
	}
	id, _ := m.HashBytes()
	if id[0] != 0x00 || id[1] != 0x11 || id[31] != 0xff {
		t.Fatalf("hash bytes %x", id)
	}
}

func TestManifestRejects(t *testing.T) {
	tests := []struct{ name, from, to string }{
		{"schema", `"schema_version": 1`, `"schema_version": 2`},
		{"kind", `"kind": "split"`, `"kind": "both"`},
		{"hash", `"hash": "sha256:0011`, `"hash": "md5:0011`},
		{"short hash", `ccddeeff"`, `ccdd"`},
		{"codec", `"codec": "factorized-rans-v1"`, `"codec": "hyperprior"`},
		{"escaping file", `"file": "head_detect.onnx"`, `"file": "../../etc/passwd"`},
		{"input", `"input": "latent",
     "outputs": ["logits"]`, `"input": "image",
     "outputs": ["logits"]`},
		{"std", `"std": [0.25, 0.25, 0.25]`, `"std": [0.25, 0, 0.25]`},
		{"decoder", `"decoder": "centernet"`, `"decoder": "yolo"`},
		{"peak kernel", `"peak_kernel": 3`, `"peak_kernel": 2`},
		{"latent", `"channels": 2, "height": 12`, `"channels": 0, "height": 12`},
		{"task twice", `"task": "segmentation"`, `"task": "classification"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := strings.Replace(sampleManifest, tt.from, tt.to, 1)
			if s == sampleManifest {
				t.Fatalf("test case does not change the manifest")
			}
			if _, err := ParseManifest([]byte(s)); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	m, _ := ParseManifest([]byte(sampleManifest))
	in := m.Input
	in.Height, in.Width = 1, 2
	px := []float32{0, 255, 127.5, 51, 204, 102}
	if err := in.Normalize(px); err != nil {
		t.Fatal(err)
	}
	for i, want := range []float32{-2, 2, 0, -1.2, 1.2, -0.4} {
		if math.Abs(float64(px[i]-want)) > 1e-6 {
			t.Fatalf("value %d: %v, want %v", i, px[i], want)
		}
	}
	if err := in.Normalize(px[:5]); err == nil {
		t.Fatal("normalized a tensor of the wrong size")
	}
}

func TestPixels(t *testing.T) {
	in := Input{Height: 4, Width: 6, Channels: 3}
	img := image.NewRGBA(image.Rect(0, 0, 12, 8))
	for y := range 8 {
		for x := range 12 {
			img.Set(x, y, color.RGBA{uint8(10 * x), 77, uint8(20 * y), 255})
		}
	}
	px := in.Pixels(nil, img)
	if len(px) != 3*4*6 {
		t.Fatalf("%d values", len(px))
	}
	plane := 24
	for i := range plane {
		if px[plane+i] != 77 {
			t.Fatalf("constant channel resized to %v", px[plane+i])
		}
	}
	// Halving: output x samples source x = 2x + 0.5, between 2x and 2x+1.
	if got, want := px[1], float32(math.Round(10*2.5)); got != want {
		t.Fatalf("red at (1, 0) = %v, want %v", got, want)
	}
	same := Input{Height: 8, Width: 12, Channels: 3}
	if px := same.Pixels(nil, img); px[5] != 50 || px[2*96+12*3] != 60 {
		t.Fatalf("same-size image changed: %v %v", px[5], px[2*96+12*3])
	}
}

func TestTestSet(t *testing.T) {
	dir := t.TempDir()
	labels := map[string]any{
		"labels": []string{"a", "b"},
		"images": []map[string]any{{"file": "scene_0000.png", "label": 1, "boxes": [][]float64{{1, 2, 5, 6, 0}}, "mask": "mask_0000.png"}},
	}
	b, _ := json.Marshal(labels)
	if err := os.WriteFile(filepath.Join(dir, "labels.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	ts, err := LoadTestSet(dir)
	if err != nil {
		t.Fatal(err)
	}
	if gt := ts.Images[0].GroundTruthBoxes(); len(gt) != 1 || gt[0].X1 != 5 || gt[0].Class != 0 {
		t.Fatalf("boxes %+v", gt)
	}
	for _, bad := range []string{
		`{"labels": ["a"], "images": [{"file": "x.png", "label": 1}]}`,
		`{"labels": ["a"], "images": [{"file": "../x.png", "label": 0}]}`,
		`{"labels": ["a"], "images": [{"file": "x.png", "label": 0, "boxes": [[0,0,1,1,0.5]]}]}`,
		`{"labels": ["a"], "images": []}`,
	} {
		if _, err := ParseTestSet([]byte(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(sampleManifest))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseManifest(b)
		if err != nil {
			return
		}
		if len(m.Heads) == 0 || m.Input.Channels != 3 {
			t.Fatalf("accepted an invalid manifest")
		}
	})
}

func FuzzParseEntropy(f *testing.F) {
	f.Add([]byte(`{"cdfs": [[0, 30000, 65535, 65536]], "cdf_lengths": [4], "offsets": [-1], "medians": [0.5]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _, _ = ParseEntropy(b)
	})
}

func FuzzParseTestSet(f *testing.F) {
	f.Add([]byte(`{"labels": ["a", "b"], "images": [{"file": "s.png", "label": 1, "boxes": [[1, 2, 5, 6, 0]], "mask": "m.png"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ParseTestSet(b)
	})
}

// writeBundle writes a bundle directory with the sample manifest and a few
// files, and seals it with its content hash.
func writeBundle(t *testing.T) string {
	dir := t.TempDir()
	for name, data := range map[string]string{"encoder.onnx": "enc", "head_classify.onnx": "cls", "sub/x.bin": "x"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(sampleManifest), 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := ContentHash(dir)
	if err != nil {
		t.Fatal(err)
	}
	sealed := strings.Replace(sampleManifest, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", hexString(h), 1)
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(sealed), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func hexString(h [32]byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 64)
	for i, b := range h {
		out[2*i], out[2*i+1] = digits[b>>4], digits[b&15]
	}
	return string(out)
}

func TestContentHash(t *testing.T) {
	dir := writeBundle(t)
	b, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	// The hash is independent of the hash field, and follows docs/BUNDLE.md:
	// recompute it here the sha256sum way.
	if got, _ := ContentHash(dir); got != b.ID {
		t.Fatalf("hash changed after sealing: %x vs %x", got, b.ID)
	}
	if err := os.WriteFile(filepath.Join(dir, "sub/x.bin"), []byte("y"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "content hash") {
		t.Fatalf("loaded a modified bundle: %v", err)
	}
}

func TestBlankHash(t *testing.T) {
	got := string(blankHash([]byte(`{"a": 1, "hash": "sha256:abc", "b": "c"}`)))
	if want := `{"a": 1, "hash": "", "b": "c"}`; got != want {
		t.Fatalf("%s, want %s", got, want)
	}
}

func FuzzParseReference(f *testing.F) {
	f.Add([]byte(`{"images": [{"index": 0, "image": "scene_0000.png", "tensors": [{"name": "input", "dtype": "float32", "shape": [1, 3, 96, 96], "file": "0_input.bin"}]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ParseReference(b)
	})
}

func TestTestSetLacks(t *testing.T) {
	ts, err := ParseTestSet([]byte(`{"labels": ["a", "b"], "images": [
		{"file": "0.png", "label": 1, "boxes": [], "mask": "m0.png"},
		{"file": "1.png", "label": 0, "boxes": [[0, 0, 2, 2, 1]]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	m := &Manifest{Heads: []Head{{Name: "c", Task: TaskClassification, Labels: []string{"a", "b"}},
		{Name: "d", Task: TaskDetection, Labels: []string{"a", "b"}}, {Name: "s", Task: TaskSegmentation}}}
	lacks, err := ts.Lacks(m)
	if err != nil {
		t.Fatal(err)
	}
	if len(lacks) != 1 || !strings.Contains(lacks[TaskSegmentation], `no "mask" for image 1.png`) {
		t.Errorf("lacks %v, want segmentation only, naming 1.png", lacks)
	}
	m.Heads[0].Labels = []string{"a", "c"}
	if _, err := ts.Lacks(m); err == nil {
		t.Error("labels that differ from the head's were accepted")
	}
}
