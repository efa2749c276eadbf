//go:build cgo

package models

import (
	"context"

	"github.com/splitstream/splitstream/models/ort"
)

type ortRunner struct{ s *ort.Session }

func openORT(model []byte, ins, outs []TensorInfo, opts Options) (runner, error) {
	lib := ortLibrary(opts.ORTLibrary)
	names := func(ts []TensorInfo) []string {
		out := make([]string, len(ts))
		for k, t := range ts {
			out[k] = t.Name
		}
		return out
	}
	s, err := ort.Open(model, names(ins), names(outs), ort.Config{Library: lib, Threads: opts.Threads,
		Provider: opts.ExecutionProvider, DeviceID: opts.DeviceID, TensorRTFP16: opts.TensorRTFP16})
	if err != nil {
		return nil, err
	}
	return ortRunner{s}, nil
}

func (r ortRunner) run(ctx context.Context, in []Tensor) ([]Tensor, error) {
	oin := make([]ort.Tensor, len(in))
	for k, t := range in {
		oin[k] = ort.Tensor(t)
	}
	out, err := r.s.Run(ctx, oin)
	if err != nil {
		return nil, err
	}
	res := make([]Tensor, len(out))
	for k, t := range out {
		res[k] = Tensor(t)
	}
	return res, nil
}

func (r ortRunner) close() error { return r.s.Close() }
