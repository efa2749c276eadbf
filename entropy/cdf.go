package entropy

import (
	"errors"
	"fmt"
	"math"
)

// PMFToQuantizedCDF returns the quantized CDF of pmf exactly as CompressAI's
// pmf_to_quantized_cdf (compressai/cpp_exts/ops/ops.cpp) computes it: each
// probability is scaled to 1<<precision in float32 and rounded half away from
// zero, the frequencies are renormalised to sum to 1<<precision with 64-bit
// integer arithmetic, and every symbol left with a zero frequency steals one
// from the symbol with the smallest frequency above 1 (the first such on
// ties). The result has len(pmf)+1 entries, starts at 0 and ends at
// 1<<precision.
//
// For an EntropyBottleneck channel, pmf is the channel's pmf followed by its
// tail mass, as update() passes it; the last symbol is then the escape symbol.
//
// It returns an error where CompressAI throws or its result is undefined: a
// negative or non-finite probability, all probabilities rounding to zero,
// more symbols than 1<<precision, or a scaled probability or total that does
// not fit 32 bits. precision must be in [1, 16].
func PMFToQuantizedCDF(pmf []float32, precision int) ([]int32, error) {
	if precision < 1 || precision > Precision {
		return nil, fmt.Errorf("entropy: pmf to cdf: precision %d outside [1, %d]", precision, Precision)
	}
	if len(pmf) > 1<<precision {
		return nil, fmt.Errorf("entropy: pmf to cdf: %d symbols cannot all have a non-zero frequency at precision %d", len(pmf), precision)
	}
	scale := float32(int32(1) << precision)
	cdf := make([]uint32, len(pmf)+1)
	var total uint64
	for i, p := range pmf {
		if p < 0 || math.IsNaN(float64(p)) || math.IsInf(float64(p), 0) {
			return nil, fmt.Errorf("entropy: pmf to cdf: probability %d is %v, not finite and non-negative", i, p)
		}
		// std::round on the float product: the product of a float32 and a
		// power of two is exact, and rounding its float64 copy is the same.
		q := math.Round(float64(float32(p * scale)))
		if q > math.MaxUint32 {
			return nil, fmt.Errorf("entropy: pmf to cdf: probability %d (%v) is too large", i, p)
		}
		cdf[i+1] = uint32(q)
		total += uint64(q)
	}
	if total == 0 {
		return nil, errors.New("entropy: pmf to cdf: no probability is large enough to be non-zero at this precision")
	}
	if total > math.MaxUint32 {
		return nil, errors.New("entropy: pmf to cdf: probabilities sum to more than 32 bits can hold")
	}
	one := uint32(1) << precision
	for i, f := range cdf {
		cdf[i] = uint32(uint64(one) * uint64(f) / total)
	}
	for i := 1; i < len(cdf); i++ {
		cdf[i] += cdf[i-1]
	}
	cdf[len(cdf)-1] = one

	for i := 0; i < len(cdf)-1; i++ {
		if cdf[i] != cdf[i+1] {
			continue
		}
		// Steal a frequency unit from the smallest frequency above 1.
		best, bestFreq := -1, ^uint32(0)
		for j := 0; j < len(cdf)-1; j++ {
			if f := cdf[j+1] - cdf[j]; f > 1 && f < bestFreq {
				best, bestFreq = j, f
			}
		}
		if best < 0 { // cannot happen with len(pmf) <= 1<<precision
			return nil, errors.New("entropy: pmf to cdf: no frequency left to steal")
		}
		if best < i {
			for j := best + 1; j <= i; j++ {
				cdf[j]--
			}
		} else {
			for j := i + 1; j <= best; j++ {
				cdf[j]++
			}
		}
	}

	out := make([]int32, len(cdf))
	for i, v := range cdf {
		out[i] = int32(v)
	}
	return out, nil
}
