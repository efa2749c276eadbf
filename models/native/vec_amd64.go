//go:build !noasm

package native

import "golang.org/x/sys/cpu"

// The AVX versions are picked once; without AVX2 (VPERMPD) the Go bodies run.
var (
	square  = pick(squareAVX, squareGo)
	gdnDiv  = pick(gdnDivAVX, gdnDivGo)
	gdnMul  = pick(gdnMulAVX, gdnMulGo)
	gather2 = pick(gather2AVX, gather2Go)
	// biasRows needs AVX-512 for its masked tails.
	biasRows = pickIf(cpu.X86.HasAVX512F, biasRowsAVX512, biasRowsGo)
	lerp     = pickIf(cpu.X86.HasAVX512F, lerpAVX512, lerpGo)
)

func pickIf[F any](ok bool, fast, portable F) F {
	if ok {
		return fast
	}
	return portable
}

func lerpAVX512(dst, a, b []float32, w float32) {
	_, _ = a[:len(dst)], b[:len(dst)]
	lerpAsm(dst, a, b, w)
}

func biasRowsAVX512(dst []float32, ds int, src []float32, ss, rows, cols int, bias float32, relu bool) {
	if rows <= 0 || cols <= 0 {
		return
	}
	_ = dst[(rows-1)*ds+cols-1]
	_ = src[(rows-1)*ss+cols-1]
	biasRowsAsm(dst, ds, src, ss, rows, cols, bias, relu)
}

func pick[F any](avx, portable F) F {
	if cpu.X86.HasAVX2 {
		return avx
	}
	return portable
}

func squareAVX(dst, src []float32) {
	_ = dst[:len(src)]
	squareAsm(dst, src)
}

func gdnDivAVX(y, x []float32, off float32) {
	_ = y[:len(x)]
	gdnDivAsm(y, x, off)
}

func gdnMulAVX(y, x []float32, off float32) {
	_ = y[:len(x)]
	gdnMulAsm(y, x, off)
}

func gather2AVX(dst, src []float32) {
	if len(dst) == 0 {
		return
	}
	_ = src[2*len(dst)-2]
	gather2Asm(dst, src)
}

// squareAsm sets dst[i] = src[i]^2 for i < len(src).
//
//go:noescape
func squareAsm(dst, src []float32)

// gdnDivAsm sets y[i] = x[i] / sqrt(y[i] + off) for i < len(x).
//
//go:noescape
func gdnDivAsm(y, x []float32, off float32)

// gdnMulAsm sets y[i] = x[i] * sqrt(y[i] + off) for i < len(x).
//
//go:noescape
func gdnMulAsm(y, x []float32, off float32)

// gather2Asm sets dst[b] = src[2b] for b < len(dst), reading src only up
// to index 2*len(dst)-2.
//
//go:noescape
func gather2Asm(dst, src []float32)

// biasRowsAsm is biasRowsGo for rows, cols >= 1 (AVX-512).
//
//go:noescape
func biasRowsAsm(dst []float32, ds int, src []float32, ss, rows, cols int, bias float32, relu bool)

// lerpAsm is lerpGo (AVX-512).
//
//go:noescape
func lerpAsm(dst, a, b []float32, w float32)
