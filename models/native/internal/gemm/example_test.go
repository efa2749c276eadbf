package gemm_test

import (
	"fmt"

	"github.com/splitstream/splitstream/models/native/internal/gemm"
)

func ExampleSgemm() {
	// A is 2x3, B is 3x2.
	a := []float32{
		1, 2, 3,
		4, 5, 6,
	}
	b := []float32{
		7, 8,
		9, 10,
		11, 12,
	}
	c := make([]float32, 4)
	gemm.Sgemm(2, 2, 3, a, 3, b, 2, c, 2, false, 1)
	fmt.Println(c)
	// Output: [58 64 139 154]
}

func ExamplePackA() {
	// A 1x1 convolution with 2 output and 3 input channels over 4 pixels:
	// the weights are packed once, then each input is one product.
	weights := []float32{
		1, 0, -1,
		0.5, 0.5, 0.5,
	}
	pw := gemm.PackA(2, 3, weights, 3)
	input := []float32{ // 3 channels x 4 pixels
		1, 2, 3, 4,
		0, 0, 0, 0,
		1, 1, 1, 1,
	}
	out := make([]float32, 2*4)
	gemm.SgemmPacked(pw, 4, input, 4, out, 4, false, 1)
	fmt.Println(out)
	// Output: [0 1 2 3 1 1.5 2 2.5]
}
