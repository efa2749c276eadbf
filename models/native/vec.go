package native

import "math"

// Vector loops of the hot elementwise steps. Each has a portable Go body
// here; vec_amd64.go swaps in AVX versions that give the same bits (IEEE
// square root and division are correctly rounded in both).

// squareGo sets dst[i] = src[i]^2 for i < len(src).
func squareGo(dst, src []float32) {
	dst = dst[:len(src)]
	for i, v := range src {
		dst[i] = v * v
	}
}

// gdnDivGo sets y[i] = x[i] / sqrt(y[i] + off) for i < len(x): the GDN
// normalisation of x by its pooled squares in y.
func gdnDivGo(y, x []float32, off float32) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] = v / float32(math.Sqrt(float64(y[i]+off)))
	}
}

// gdnMulGo is gdnDivGo for the inverse GDN: y[i] = x[i] * sqrt(y[i] + off).
func gdnMulGo(y, x []float32, off float32) {
	y = y[:len(x)]
	for i, v := range x {
		y[i] = v * float32(math.Sqrt(float64(y[i]+off)))
	}
}

// gather2Go sets dst[b] = src[2b] for b < len(dst); src must hold at least
// 2*len(dst)-1 values.
func gather2Go(dst, src []float32) {
	if len(dst) == 0 {
		return
	}
	src = src[:2*len(dst)-1]
	for b := range dst {
		dst[b] = src[2*b]
	}
}
