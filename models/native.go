package models

import (
	"context"

	"github.com/splitstream/splitstream/models/internal/onnx"
	"github.com/splitstream/splitstream/models/native"
)

type nativeRunner struct{ m *native.Model }

func openNative(m *onnx.Model, opts Options) (runner, error) {
	nm, err := native.Load(m, opts.Threads)
	if err != nil {
		return nil, err
	}
	return nativeRunner{nm}, nil
}

func (r nativeRunner) run(ctx context.Context, in []Tensor) ([]Tensor, error) {
	nin := make([]native.Tensor, len(in))
	for k, t := range in {
		nin[k] = native.Tensor(t)
	}
	out, err := r.m.Run(ctx, nin)
	if err != nil {
		return nil, err
	}
	res := make([]Tensor, len(out))
	for k, t := range out {
		res[k] = Tensor(t)
	}
	return res, nil
}

func (r nativeRunner) close() error {
	r.m.Close()
	return nil
}
