package entropy_test

import (
	"fmt"

	"github.com/splitstream/splitstream/entropy"
)

// Build a table from two channels' pmfs (tail mass last, as CompressAI's
// EntropyBottleneck.update() passes them), code a few symbols, one of them
// far outside its channel's range, and decode them again.
func Example() {
	pmfs := [][]float32{
		{0.1, 0.2, 0.4, 0.2, 0.1, 1e-3}, // symbols -2..2, then the tail mass
		{0.7, 0.3, 1e-3},                // symbols 0..1
	}
	var cdfs [][]int32
	var lengths, offsets []int32
	for i, pmf := range pmfs {
		cdf, err := entropy.PMFToQuantizedCDF(pmf, entropy.Precision)
		if err != nil {
			panic(err)
		}
		cdfs = append(cdfs, cdf)
		lengths = append(lengths, int32(len(cdf)))
		offsets = append(offsets, []int32{-2, 0}[i])
	}
	table, err := entropy.NewTable(cdfs, lengths, offsets)
	if err != nil {
		panic(err)
	}

	symbols := []int32{0, 1, -2, 0, 1000, 1}
	indexes := []int32{0, 1, 0, 1, 0, 1}
	var enc entropy.Encoder
	data, err := enc.Encode(nil, symbols, indexes, table)
	if err != nil {
		panic(err)
	}
	var dec entropy.Decoder
	back, err := dec.Decode(nil, data, indexes, table)
	if err != nil {
		panic(err)
	}
	// 0.7, 0.3 and 0.001 scale to 45875, 19661 and 66 (sum 65602), which
	// renormalise to 45828, 19641 and 65; the last entry is set to 65536.
	fmt.Println(cdfs[1])
	fmt.Println(len(data), "bytes:", back)
	// Output:
	// [0 45828 65469 65536]
	// 12 bytes: [0 1 -2 0 1000 1]
}
