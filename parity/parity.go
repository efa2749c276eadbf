// Package parity measures how far a bundle's graphs, run by the engines that
// run them in deployment, are from the PyTorch outputs the exporter stored
// in the bundle's reference vectors (docs/BUNDLE.md, "Reference vectors"),
// and checks the learned codec against the reference rANS strings.
//
// It judges nothing: the exporter (train/gate.py, through `splitstream
// parity --json`) compares the figures with its tolerance and fails the
// export past it.
package parity

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"

	"github.com/splitstream/splitstream/bundle"
	"github.com/splitstream/splitstream/edge"
	"github.com/splitstream/splitstream/models"
)

// Options configure Check.
type Options struct {
	// Engines are the engines to run ("native", "ort"); empty means native.
	Engines []string
	// EngineOptions are passed to every engine.
	EngineOptions models.Options
	// TestSet is the folder of the test set the reference images come from;
	// "" means the bundle's own test set, if it has one. With a test set the
	// edge strings are made from the image files through the edge's whole
	// path; without one, from the reference input tensors.
	TestSet string
}

// Graph is the largest difference of one graph's outputs from PyTorch's
// over the reference images, with one engine.
type Graph struct {
	Graph  string `json:"graph"` // encoder, trunk or head_<name>
	Engine string `json:"engine"`
	// MaxAbsDiff is max |engine - pytorch| over every output element.
	MaxAbsDiff float64 `json:"max_abs_diff"`
	// MaxAbsRef is max |pytorch| over the same elements, for a relative tolerance.
	MaxAbsRef float64 `json:"max_abs_ref"`
	// Output is the output where MaxAbsDiff was measured.
	Output string `json:"output"`
}

// Strings compares rANS strings with the reference strings (split bundles).
type Strings struct {
	Engine string `json:"engine"`
	Images int    `json:"images"`
	// EdgeEqual counts the images whose edge string (this engine's latent,
	// the learned codec) equals the reference string byte for byte.
	EdgeEqual int `json:"edge_equal"`
	// EdgeInput says what the edge started from: "image" (the test set's
	// file, through decoding, resizing and normalisation) or "reference"
	// (the reference input tensor).
	EdgeInput string `json:"edge_input"`
	// SymbolsDiffer counts the latent elements whose symbol differs from the
	// reference symbol, out of Symbols.
	SymbolsDiffer int `json:"symbols_differ"`
	Symbols       int `json:"symbols"`
}

// Report is the result of Check.
type Report struct {
	Bundle string  `json:"bundle"`
	Kind   string  `json:"kind"`
	Images int     `json:"images"`
	Graphs []Graph `json:"graphs"`
	// CodecEqual counts the reference images whose string, coded by the
	// learned codec from the reference latent, equals the reference string;
	// CodecSymbolsEqual those whose symbols equal the reference symbols. Both
	// must equal Images: they check the codec, not an engine.
	CodecEqual        int `json:"codec_equal"`
	CodecSymbolsEqual int `json:"codec_symbols_equal"`
	// Strings has one entry per engine (split bundles).
	Strings []Strings `json:"strings,omitempty"`
	// PreprocessMaxAbsDiff is max |Go preprocessing - reference input| over
	// the reference images found in the test set; -1 when none was found.
	PreprocessMaxAbsDiff float64 `json:"preprocess_max_abs_diff"`
}

// refImage is one reference image's tensors, loaded.
type refImage struct {
	index   int
	image   string
	floats  map[string]models.Tensor
	symbols []int32
	rans    []byte
}

func loadReference(b *bundle.Bundle) ([]refImage, error) {
	ref, err := b.Reference()
	if err != nil {
		return nil, err
	}
	if len(ref.Images) == 0 {
		return nil, fmt.Errorf("bundle %s: the reference holds no image", b.Name)
	}
	out := make([]refImage, 0, len(ref.Images))
	for _, im := range ref.Images {
		r := refImage{index: im.Index, image: im.Image, floats: map[string]models.Tensor{}}
		for i := range im.Tensors {
			t := &im.Tensors[i]
			switch t.DType {
			case "float32":
				d, err := ref.Float32(t)
				if err != nil {
					return nil, err
				}
				r.floats[t.Name] = models.Tensor{Shape: slices.Clone(t.Shape), Data: d}
			case "int32":
				if t.Name == "symbols" {
					if r.symbols, err = ref.Int32(t); err != nil {
						return nil, err
					}
				}
			case "uint8":
				if t.Name == "rans" {
					if r.rans, err = ref.Bytes(t); err != nil {
						return nil, err
					}
				}
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// graphRun is one graph of the bundle: its file, the reference tensor it
// takes and the reference tensors its outputs are compared with.
type graphRun struct {
	name    string
	file    string
	input   string   // reference tensor fed to the graph's only input
	outputs []string // graph output names, equal to reference tensor names
	refOut  []string // reference tensor names, in the order of outputs
}

func graphs(b *bundle.Bundle) ([]graphRun, error) {
	var gs []graphRun
	if b.Kind == bundle.KindSplit {
		gs = append(gs, graphRun{name: "encoder", file: b.Encoder.File, input: "input",
			outputs: []string{b.Encoder.Output}, refOut: []string{"latent"}})
	}
	if b.Cloud.Layout == "trunk" {
		in := "input"
		if b.Kind == bundle.KindSplit {
			in = "latent_hat"
		}
		gs = append(gs, graphRun{name: "trunk", file: b.Cloud.Trunk.File, input: in,
			outputs: []string{b.Cloud.Trunk.Output}, refOut: []string{"features"}})
	}
	for _, h := range b.Heads {
		in := map[string]string{"features": "features", "latent": "latent_hat", "image": "input"}[h.Input]
		if in == "" {
			return nil, fmt.Errorf("head %q: input %q", h.Name, h.Input)
		}
		gs = append(gs, graphRun{name: "head_" + h.Name, file: h.File, input: in, outputs: h.Outputs, refOut: h.Outputs})
	}
	return gs, nil
}

// Check runs every graph of b on its reference vectors with each engine of
// o, and the learned codec on the reference latents.
func Check(ctx context.Context, b *bundle.Bundle, o Options) (*Report, error) {
	refs, err := loadReference(b)
	if err != nil {
		return nil, err
	}
	gs, err := graphs(b)
	if err != nil {
		return nil, err
	}
	engines := o.Engines
	if len(engines) == 0 {
		engines = []string{models.Native}
	}
	rep := &Report{Bundle: b.Name, Kind: b.Kind, Images: len(refs), PreprocessMaxAbsDiff: -1}
	for _, kind := range engines {
		for _, g := range gs {
			r, err := runGraph(ctx, b, kind, o.EngineOptions, g, refs)
			if err != nil {
				return nil, err
			}
			rep.Graphs = append(rep.Graphs, r)
		}
	}
	if b.Kind != bundle.KindSplit {
		return rep, nil
	}
	if err := checkCodec(b, refs, rep); err != nil {
		return nil, err
	}
	ts, err := testSet(b, o.TestSet)
	if err != nil {
		return nil, err
	}
	if ts != nil {
		if rep.PreprocessMaxAbsDiff, err = preprocess(b, ts, refs); err != nil {
			return nil, err
		}
	}
	for _, kind := range engines {
		s, err := edgeStrings(ctx, b, kind, o.EngineOptions, refs, ts)
		if err != nil {
			return nil, err
		}
		rep.Strings = append(rep.Strings, s)
	}
	return rep, nil
}

func runGraph(ctx context.Context, b *bundle.Bundle, kind string, opts models.Options, g graphRun, refs []refImage) (Graph, error) {
	res := Graph{Graph: g.name, Engine: kind, Output: g.outputs[0]}
	eng, err := models.OpenFile(kind, b.Path(g.file), opts)
	if err != nil {
		return res, fmt.Errorf("%s with %s: %w", g.name, kind, err)
	}
	defer eng.Close()
	ins := eng.Inputs()
	if len(ins) != 1 {
		return res, fmt.Errorf("%s: %d graph inputs, want 1", g.name, len(ins))
	}
	for _, r := range refs {
		x, ok := r.floats[g.input]
		if !ok {
			return res, fmt.Errorf("%s: reference image %d has no tensor %q", g.name, r.index, g.input)
		}
		out, err := eng.Run(ctx, map[string]models.Tensor{ins[0].Name: x})
		if err != nil {
			return res, fmt.Errorf("%s with %s on reference image %d: %w", g.name, kind, r.index, err)
		}
		for k, name := range g.outputs {
			got, ok := out[name]
			want, ok2 := r.floats[g.refOut[k]]
			if !ok || !ok2 {
				return res, fmt.Errorf("%s: output %q missing from the graph or the reference", g.name, name)
			}
			if !slices.Equal(got.Shape, want.Shape) {
				return res, fmt.Errorf("%s with %s: output %q has shape %v, the reference %v", g.name, kind, name, got.Shape, want.Shape)
			}
			for i, v := range want.Data {
				ref := math.Abs(float64(v))
				d := math.Abs(float64(got.Data[i]) - float64(v))
				if math.IsNaN(d) {
					d = math.Inf(1)
				}
				if d > res.MaxAbsDiff {
					res.MaxAbsDiff, res.Output = d, name
				}
				res.MaxAbsRef = max(res.MaxAbsRef, ref)
			}
		}
	}
	return res, nil
}

// checkCodec codes each reference latent with the learned codec and
// compares symbols and string with the reference.
func checkCodec(b *bundle.Bundle, refs []refImage, rep *Report) error {
	l, err := b.Codec()
	if err != nil {
		return err
	}
	s := b.Shape()
	for _, r := range refs {
		y, ok := r.floats["latent"]
		if !ok || r.symbols == nil || r.rans == nil {
			return fmt.Errorf("reference image %d lacks latent, symbols or rans", r.index)
		}
		sym, err := l.Quantize(nil, s, y.Data)
		if err != nil {
			return err
		}
		if slices.Equal(sym, r.symbols) {
			rep.CodecSymbolsEqual++
		}
		str, err := l.EncodeSymbols(nil, s, sym)
		if err != nil {
			return err
		}
		if slices.Equal(str, r.rans) {
			rep.CodecEqual++
		}
	}
	return nil
}

// testSet returns the test set to read reference images from, or nil.
func testSet(b *bundle.Bundle, dir string) (*bundle.TestSet, error) {
	if dir != "" {
		return bundle.LoadTestSet(dir)
	}
	ts, err := b.TestSet()
	if errors.Is(err, bundle.ErrNoTestSet) || errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return ts, err
}

// imageFile returns the path of a reference image in the test set, or "".
func imageFile(ts *bundle.TestSet, r refImage) string {
	if ts == nil || r.index < 0 || r.index >= len(ts.Images) || ts.Images[r.index].File != r.image {
		return ""
	}
	return filepath.Join(ts.Dir, r.image)
}

// preprocess compares the edge's preprocessing of each reference image
// found in ts with the reference input.
func preprocess(b *bundle.Bundle, ts *bundle.TestSet, refs []refImage) (float64, error) {
	worst := -1.0
	for _, r := range refs {
		path := imageFile(ts, r)
		if path == "" {
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return 0, err
		}
		img, err := edge.DecodeImage(data)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", path, err)
		}
		px := b.Input.Pixels(nil, img)
		if err := b.Input.Normalize(px); err != nil {
			return 0, err
		}
		want := r.floats["input"].Data
		if len(want) != len(px) {
			return 0, fmt.Errorf("%s: %d input values, the reference has %d", path, len(px), len(want))
		}
		worst = max(worst, 0)
		for i := range px {
			worst = max(worst, math.Abs(float64(px[i])-float64(want[i])))
		}
	}
	return worst, nil
}

// edgeStrings codes every reference image through the edge with one engine
// and compares symbols and strings with the reference.
func edgeStrings(ctx context.Context, b *bundle.Bundle, kind string, opts models.Options, refs []refImage, ts *bundle.TestSet) (Strings, error) {
	res := Strings{Engine: kind, Images: len(refs), EdgeInput: "reference"}
	enc, err := edge.NewEncoder(b, edge.EncoderOptions{Engine: kind, EngineOptions: opts})
	if err != nil {
		return res, err
	}
	defer enc.Close()
	l, err := b.Codec()
	if err != nil {
		return res, err
	}
	s := b.Shape()
	fromImage := true
	for _, r := range refs {
		fromImage = fromImage && imageFile(ts, r) != ""
	}
	var eng models.Engine // the encoder, when the edge starts from the reference input
	if fromImage {
		res.EdgeInput = "image"
	} else {
		if eng, err = models.OpenFile(kind, b.Path(b.Encoder.File), opts); err != nil {
			return res, err
		}
		defer eng.Close()
	}
	for _, r := range refs {
		var y []float32
		if fromImage {
			data, err := os.ReadFile(imageFile(ts, r))
			if err != nil {
				return res, err
			}
			img, err := edge.DecodeImage(data)
			if err != nil {
				return res, err
			}
			if y, _, err = enc.Latent(ctx, img); err != nil {
				return res, err
			}
		} else {
			out, err := eng.Run(ctx, map[string]models.Tensor{b.Encoder.Input: r.floats["input"]})
			if err != nil {
				return res, err
			}
			y = out[b.Encoder.Output].Data
		}
		sym, err := l.Quantize(nil, s, y)
		if err != nil {
			return res, err
		}
		for i, v := range sym {
			if i < len(r.symbols) && v != r.symbols[i] {
				res.SymbolsDiffer++
			}
		}
		res.Symbols += len(sym)
		str, err := l.EncodeSymbols(nil, s, sym)
		if err != nil {
			return res, err
		}
		if slices.Equal(str, r.rans) {
			res.EdgeEqual++
		}
	}
	return res, nil
}

// WriteText writes the report as text: one line per graph and engine, and
// for a split bundle the strings equal to the reference strings.
func (r *Report) WriteText(w io.Writer) {
	fmt.Fprintf(w, "bundle %s (%s), %d reference images\n", r.Bundle, r.Kind, r.Images)
	fmt.Fprintf(w, "  %-16s %-7s %14s %14s  %s\n", "graph", "engine", "max |diff|", "max |ref|", "output")
	for _, g := range r.Graphs {
		fmt.Fprintf(w, "  %-16s %-7s %14.3g %14.3g  %s\n", g.Graph, g.Engine, g.MaxAbsDiff, g.MaxAbsRef, g.Output)
	}
	if r.Kind == bundle.KindSplit {
		fmt.Fprintf(w, "  codec on the reference latents: %d/%d strings, %d/%d symbol sets equal\n", r.CodecEqual, r.Images, r.CodecSymbolsEqual, r.Images)
		for _, s := range r.Strings {
			fmt.Fprintf(w, "  edge (%s, from the %s): %d/%d strings equal, %d of %d symbols differ\n", s.Engine, s.EdgeInput, s.EdgeEqual, s.Images, s.SymbolsDiffer, s.Symbols)
		}
		if r.PreprocessMaxAbsDiff >= 0 {
			fmt.Fprintf(w, "  preprocessing of the test images: max |diff| %.3g from the reference inputs\n", r.PreprocessMaxAbsDiff)
		}
	}
}
