//go:build (!amd64 && !arm64) || noasm

package gemm

// runnableKernels lists the kernels this CPU runs, fastest first.
func runnableKernels() []*kernel { return []*kernel{genericKernel} }
