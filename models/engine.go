// Package models runs ONNX graphs behind one small interface, Engine, with
// two implementations: "native", the pure-Go engine (the default; no cgo,
// builds for every GOARCH) and "ort", ONNX Runtime loaded from a shared
// library at run time (needs cgo).
//
// Both engines check inputs against the graph's declared inputs before
// running and outputs against its declared outputs after, so a wrong shape
// is an error that names the tensor and the dimension.
package models

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/splitstream/splitstream/models/internal/onnx"
)

// Tensor is a dense float32 tensor in row-major order (NCHW for images);
// Shape includes the batch dimension.
type Tensor struct {
	Shape []int
	Data  []float32
}

// TensorInfo describes a declared graph input or output. Shape holds -1
// for a dynamic dimension (typically the batch); a nil Shape means the
// graph does not declare one.
type TensorInfo struct {
	Name  string
	Shape []int
}

// Engine runs one loaded graph.
//
// Run is safe for concurrent use by several goroutines with both engines:
// the native engine gives each concurrent run its own workspace; ONNX
// Runtime sessions are documented thread-safe for Run. The returned
// tensors belong to the caller.
type Engine interface {
	// Inputs returns the inputs Run expects, in graph order.
	Inputs() []TensorInfo
	// Outputs returns the outputs Run returns, in graph order.
	Outputs() []TensorInfo
	// Run feeds every input by name and returns every output by name.
	Run(ctx context.Context, inputs map[string]Tensor) (map[string]Tensor, error)
	// Close releases the engine; Run must not be called afterwards.
	Close() error
}

// Engine kinds accepted by Open.
const (
	Native = "native"
	ORT    = "ort"
	// Auto is ONNX Runtime where its library loads, else native; KindOf
	// says which an engine got.
	Auto = "auto"
)

// Options configure an engine. The zero value is valid: the native engine
// with one thread per CPU.
type Options struct {
	// Threads is the number of threads one Run uses (intra-op threads for
	// ONNX Runtime); <= 0 means one per CPU for native, ONNX Runtime's own
	// default for ort.
	Threads int
	// ORTLibrary is the path of ONNX Runtime's shared library
	// (libonnxruntime.so); empty means $SPLITSTREAM_ORT_LIB, or else
	// DefaultORTLibrary when that file exists (where `make ort` puts it).
	// Only "ort" uses it. The first ort engine of a process loads the library; later
	// ones must name the same file.
	ORTLibrary string
	// ExecutionProvider selects ONNX Runtime's execution provider: "" or
	// "cpu" (default), "cuda" or "tensorrt" (for a Jetson or a GPU
	// server; they need an ONNX Runtime build with that provider and are
	// untested here, where only the CPU build is available). Native
	// ignores it.
	ExecutionProvider string
	// DeviceID is the GPU index for the cuda and tensorrt providers.
	DeviceID int
	// TensorRTFP16 lets TensorRT run in half precision (untested here).
	TensorRTFP16 bool
}

// ORTLibraryEnv is the environment variable that names ONNX Runtime's
// shared library when Options.ORTLibrary is empty.
const ORTLibraryEnv = "SPLITSTREAM_ORT_LIB"

// DefaultORTLibrary is where `make ort` puts the library, relative to the
// repository root.
const DefaultORTLibrary = "third_party/ort/libonnxruntime.so"

// ortLibrary resolves the library path: the option, the environment, the
// default location if present.
func ortLibrary(opt string) string {
	if opt != "" {
		return opt
	}
	if env := os.Getenv(ORTLibraryEnv); env != "" {
		return env
	}
	if _, err := os.Stat(DefaultORTLibrary); err == nil {
		return DefaultORTLibrary
	}
	return ""
}

// ErrNoCgo is returned by Open for the ort engine in a binary built
// without cgo.
var ErrNoCgo = errors.New("the ONNX Runtime engine needs a binary built with cgo (CGO_ENABLED=1); this one was built without, use the native engine")

// Open loads a serialized ONNX model into an engine of the given kind
// ("native" or "ort"; "" means native).
func Open(kind string, model []byte, opts Options) (Engine, error) {
	m, err := onnx.Decode(model)
	if err != nil {
		return nil, err
	}
	ins, outs, err := declared(m)
	if err != nil {
		return nil, err
	}
	var run runner
	switch kind {
	case "", Native:
		kind = Native
		run, err = openNative(m, opts)
	case ORT:
		run, err = openORT(model, ins, outs, opts)
	case Auto:
		kind = Native
		if ortLibraryMissing(opts) == nil {
			if run, err = openORT(model, ins, outs, opts); err == nil {
				kind = ORT
			}
		}
		if kind == Native {
			run, err = openNative(m, opts)
		}
	default:
		return nil, fmt.Errorf("models: unknown engine %q (want %q, %q or %q)", kind, Native, ORT, Auto)
	}
	if err != nil {
		return nil, err
	}
	return &engine{run: run, kind: kind, ins: ins, outs: outs}, nil
}

// ortLibraryMissing says why ONNX Runtime cannot be used, or nil when its
// library is configured and exists.
func ortLibraryMissing(opts Options) error {
	lib := ortLibrary(opts.ORTLibrary)
	if lib == "" {
		return errors.New("no ONNX Runtime library configured")
	}
	_, err := os.Stat(lib)
	return err
}

// KindOf is the kind of engine Open made (Native or ORT; what Auto chose),
// or "" for an Engine from elsewhere.
func KindOf(e Engine) string {
	if x, ok := e.(*engine); ok {
		return x.kind
	}
	return ""
}

// OpenFile is Open with the model read from a file.
func OpenFile(kind, path string, opts Options) (Engine, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("models: %w", err)
	}
	e, err := Open(kind, b, opts)
	if err != nil {
		return nil, fmt.Errorf("models: %s: %w", path, err)
	}
	return e, nil
}

// declared returns the graph's float inputs (initializers excluded) and
// outputs.
func declared(m *onnx.Model) ([]TensorInfo, []TensorInfo, error) {
	inits := map[string]bool{}
	for _, t := range m.Graph.Initializers {
		inits[t.Name] = true
	}
	conv := func(vs []onnx.ValueInfo, what string) ([]TensorInfo, error) {
		var out []TensorInfo
		for _, v := range vs {
			if inits[v.Name] {
				continue
			}
			if v.ElemType != 0 && v.ElemType != onnx.TypeFloat {
				return nil, fmt.Errorf("models: %s %q has type %s; only float32 tensors are supported", what, v.Name, onnx.TypeName(v.ElemType))
			}
			ti := TensorInfo{Name: v.Name}
			if v.Shape != nil {
				ti.Shape = make([]int, len(v.Shape))
				for k, d := range v.Shape {
					ti.Shape[k] = int(d)
				}
			}
			out = append(out, ti)
		}
		return out, nil
	}
	ins, err := conv(m.Graph.Inputs, "input")
	if err != nil {
		return nil, nil, err
	}
	outs, err := conv(m.Graph.Outputs, "output")
	if err != nil {
		return nil, nil, err
	}
	if len(outs) == 0 {
		return nil, nil, errors.New("models: the graph declares no outputs")
	}
	return ins, outs, nil
}

// runner is what each engine implements: run on inputs in declared order,
// return outputs in declared order.
type runner interface {
	run(ctx context.Context, in []Tensor) ([]Tensor, error)
	close() error
}

// engine wraps a runner with the checks against the declared shapes.
type engine struct {
	run       runner
	kind      string
	ins, outs []TensorInfo
}

func (e *engine) Inputs() []TensorInfo  { return cloneInfo(e.ins) }
func (e *engine) Outputs() []TensorInfo { return cloneInfo(e.outs) }
func (e *engine) Close() error          { return e.run.close() }

func cloneInfo(in []TensorInfo) []TensorInfo {
	out := make([]TensorInfo, len(in))
	for k, t := range in {
		out[k] = TensorInfo{Name: t.Name, Shape: slices.Clone(t.Shape)}
	}
	return out
}

func (e *engine) Run(ctx context.Context, inputs map[string]Tensor) (map[string]Tensor, error) {
	if len(inputs) != len(e.ins) {
		for name := range inputs {
			if !slices.ContainsFunc(e.ins, func(t TensorInfo) bool { return t.Name == name }) {
				return nil, fmt.Errorf("models: unknown input %q (the graph takes %s)", name, names(e.ins))
			}
		}
	}
	in := make([]Tensor, len(e.ins))
	for k, info := range e.ins {
		t, ok := inputs[info.Name]
		if !ok {
			return nil, fmt.Errorf("models: input %q is missing (the graph takes %s)", info.Name, names(e.ins))
		}
		if err := check(info, t.Shape); err != nil {
			return nil, fmt.Errorf("models: input %w", err)
		}
		n := 1
		for _, d := range t.Shape {
			n *= d
		}
		if n != len(t.Data) {
			return nil, fmt.Errorf("models: input %q: shape %v needs %d values, data has %d", info.Name, t.Shape, n, len(t.Data))
		}
		in[k] = t
	}
	out, err := e.run.run(ctx, in)
	if err != nil {
		return nil, err
	}
	if len(out) != len(e.outs) {
		return nil, fmt.Errorf("models: engine returned %d outputs, the graph declares %d", len(out), len(e.outs))
	}
	res := make(map[string]Tensor, len(out))
	for k, info := range e.outs {
		if err := check(info, out[k].Shape); err != nil {
			return nil, fmt.Errorf("models: output %w", err)
		}
		res[info.Name] = out[k]
	}
	return res, nil
}

// check compares a shape with a declared one.
func check(info TensorInfo, shape []int) error {
	for _, d := range shape {
		if d < 0 {
			return fmt.Errorf("%q: negative dimension in shape %v", info.Name, shape)
		}
	}
	if info.Shape == nil {
		return nil
	}
	if len(shape) != len(info.Shape) {
		return fmt.Errorf("%q: shape %v has rank %d, the graph declares %v (rank %d)", info.Name, shape, len(shape), dims(info.Shape), len(info.Shape))
	}
	for k, d := range info.Shape {
		if d >= 0 && shape[k] != d {
			return fmt.Errorf("%q: dimension %d is %d, the graph declares %v", info.Name, k, shape[k], dims(info.Shape))
		}
	}
	return nil
}

// dims formats a declared shape with ? for dynamic dimensions.
func dims(s []int) string {
	out := "["
	for k, d := range s {
		if k > 0 {
			out += " "
		}
		if d < 0 {
			out += "?"
		} else {
			out += fmt.Sprint(d)
		}
	}
	return out + "]"
}

func names(ts []TensorInfo) string {
	out := ""
	for k, t := range ts {
		if k > 0 {
			out += ", "
		}
		out += fmt.Sprintf("%q %s", t.Name, dims(t.Shape))
	}
	return out
}
