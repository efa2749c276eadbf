//go:build cgo

package ort

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	ortgo "github.com/yalue/onnxruntime_go"
)

// Tensor is a dense float32 tensor in row-major order.
type Tensor struct {
	Shape []int
	Data  []float32
}

// Config selects the library and how sessions run.
type Config struct {
	// Library is the path of libonnxruntime.so (required).
	Library string
	// Threads is the intra-op thread count; <= 0 keeps ONNX Runtime's
	// default. Inter-op threads are always 1 (the graphs here are chains).
	Threads int
	// Provider is "" or "cpu", "cuda" or "tensorrt". CUDA and TensorRT
	// need an ONNX Runtime build with them (a Jetson's JetPack build, or
	// the GPU package) and are untested here.
	Provider string
	// DeviceID is the GPU for cuda and tensorrt.
	DeviceID int
	// TensorRTFP16 enables trt_fp16_enable.
	TensorRTFP16 bool
}

var env struct {
	sync.Mutex
	lib  string
	refs int
}

// acquire initializes the process-wide ONNX Runtime environment with lib,
// or checks that it was initialized with the same library.
func acquire(lib string) error {
	env.Lock()
	defer env.Unlock()
	if lib == "" {
		return errors.New("ort: no ONNX Runtime library given (set the path by flag or $SPLITSTREAM_ORT_LIB; `make ort` fetches it)")
	}
	if env.refs > 0 {
		if env.lib != lib {
			return fmt.Errorf("ort: the process already loaded %s; cannot load %s too", env.lib, lib)
		}
		env.refs++
		return nil
	}
	ortgo.SetSharedLibraryPath(lib)
	if err := ortgo.InitializeEnvironment(ortgo.WithLogLevelError()); err != nil {
		return fmt.Errorf("ort: load %s: %w", lib, err)
	}
	env.lib, env.refs = lib, 1
	return nil
}

func release() error {
	env.Lock()
	defer env.Unlock()
	env.refs--
	if env.refs == 0 {
		return ortgo.DestroyEnvironment()
	}
	return nil
}

// Session is one loaded graph. Run is safe for concurrent use.
type Session struct {
	s         *ortgo.DynamicAdvancedSession
	ins, outs []string
	once      sync.Once
}

// Open creates a session for the serialized model with the given input and
// output names.
func Open(model []byte, ins, outs []string, cfg Config) (*Session, error) {
	if err := acquire(cfg.Library); err != nil {
		return nil, err
	}
	s, err := open(model, ins, outs, cfg)
	if err != nil {
		release()
		return nil, err
	}
	return s, nil
}

func open(model []byte, ins, outs []string, cfg Config) (*Session, error) {
	so, err := ortgo.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("ort: session options: %w", err)
	}
	defer so.Destroy()
	if cfg.Threads > 0 {
		if err := so.SetIntraOpNumThreads(cfg.Threads); err != nil {
			return nil, fmt.Errorf("ort: threads: %w", err)
		}
	}
	if err := so.SetInterOpNumThreads(1); err != nil {
		return nil, fmt.Errorf("ort: threads: %w", err)
	}
	switch strings.ToLower(cfg.Provider) {
	case "", "cpu":
	case "cuda":
		po, err := ortgo.NewCUDAProviderOptions()
		if err != nil {
			return nil, fmt.Errorf("ort: cuda: %w", err)
		}
		defer po.Destroy()
		if err := po.Update(map[string]string{"device_id": fmt.Sprint(cfg.DeviceID)}); err != nil {
			return nil, fmt.Errorf("ort: cuda options: %w", err)
		}
		if err := so.AppendExecutionProviderCUDA(po); err != nil {
			return nil, fmt.Errorf("ort: cuda execution provider (does this ONNX Runtime build include it?): %w", err)
		}
	case "tensorrt":
		po, err := ortgo.NewTensorRTProviderOptions()
		if err != nil {
			return nil, fmt.Errorf("ort: tensorrt: %w", err)
		}
		defer po.Destroy()
		opts := map[string]string{"device_id": fmt.Sprint(cfg.DeviceID)}
		if cfg.TensorRTFP16 {
			opts["trt_fp16_enable"] = "1"
		}
		if err := po.Update(opts); err != nil {
			return nil, fmt.Errorf("ort: tensorrt options: %w", err)
		}
		if err := so.AppendExecutionProviderTensorRT(po); err != nil {
			return nil, fmt.Errorf("ort: tensorrt execution provider (does this ONNX Runtime build include it?): %w", err)
		}
	default:
		return nil, fmt.Errorf("ort: unknown execution provider %q (want cpu, cuda or tensorrt)", cfg.Provider)
	}
	s, err := ortgo.NewDynamicAdvancedSessionWithONNXData(model, ins, outs, so)
	if err != nil {
		return nil, fmt.Errorf("ort: create session: %w", err)
	}
	return &Session{s: s, ins: ins, outs: outs}, nil
}

// Run feeds the inputs in the order given to Open and returns the outputs
// in that order. ONNX Runtime cannot be interrupted mid-run; ctx is checked
// before starting.
func (s *Session) Run(ctx context.Context, in []Tensor) ([]Tensor, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	vals := make([]ortgo.Value, len(in))
	defer func() {
		for _, v := range vals {
			if v != nil {
				v.Destroy()
			}
		}
	}()
	for k, t := range in {
		shape := make(ortgo.Shape, len(t.Shape))
		for d, v := range t.Shape {
			shape[d] = int64(v)
		}
		v, err := ortgo.NewTensor(shape, t.Data)
		if err != nil {
			return nil, fmt.Errorf("ort: input %q: %w", s.ins[k], err)
		}
		vals[k] = v
	}
	outs := make([]ortgo.Value, len(s.outs))
	defer func() {
		for _, v := range outs {
			if v != nil {
				v.Destroy()
			}
		}
	}()
	if err := s.s.Run(vals, outs); err != nil {
		return nil, fmt.Errorf("ort: run: %w", err)
	}
	res := make([]Tensor, len(outs))
	for k, v := range outs {
		t, ok := v.(*ortgo.Tensor[float32])
		if !ok {
			return nil, fmt.Errorf("ort: output %q is not a float32 tensor", s.outs[k])
		}
		shape := t.GetShape()
		r := Tensor{Shape: make([]int, len(shape)), Data: append([]float32(nil), t.GetData()...)}
		for d, v := range shape {
			r.Shape[d] = int(v)
		}
		res[k] = r
	}
	return res, nil
}

// Close destroys the session and, with the last one, the environment.
func (s *Session) Close() error {
	var err error
	s.once.Do(func() {
		err = errors.Join(s.s.Destroy(), release())
	})
	return err
}
