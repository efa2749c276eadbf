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

// biasRowsGo sets dst[r*ds+j] = src[r*ss+j] + bias for r < rows and
// j < cols, then max(., 0) when relu is set: a convolution's epilogue for
// one output channel, moving rows from a wider layout (ss) into the output
// (ds) or in place.
func biasRowsGo(dst []float32, ds int, src []float32, ss, rows, cols int, bias float32, relu bool) {
	for r := range rows {
		d, s := dst[r*ds:r*ds+cols], src[r*ss:r*ss+cols]
		if relu {
			for j, v := range s {
				d[j] = max(v+bias, 0)
			}
			continue
		}
		for j, v := range s {
			d[j] = v + bias
		}
	}
}

// lerpGo sets dst[i] = a[i] + w*(b[i]-a[i]) for i < len(dst): one output
// row of a bilinear resize from two rows already interpolated along x.
func lerpGo(dst, a, b []float32, w float32) {
	a, b = a[:len(dst)], b[:len(dst)]
	for i := range dst {
		dst[i] = a[i] + w*(b[i]-a[i])
	}
}
