//go:build !cgo

package models

func openORT([]byte, []TensorInfo, []TensorInfo, Options) (runner, error) {
	return nil, ErrNoCgo
}
