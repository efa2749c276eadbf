package codec

// MaxEncodedLen returns an upper bound on the bytes of any payload that codec
// id can produce for a tensor of shape s, so that a server can refuse a
// longer payload from its header alone. It returns 0 for an unknown codec or
// an invalid shape. The bounds, per element n = C·H·W:
//
//   - factorized-rans-v1: 6n + 16. A symbol costs at most 16 bits (every
//     symbol of a 16-bit CDF has a frequency of at least 1) plus, when it is
//     escaped, a 4-bit count and at most seven 4-bit chunks (the coder
//     refuses values more than 2^27 outside the table); 8 bytes of final
//     state and one partly filled 32-bit word.
//   - raw-f32: exactly 4n.
//   - int8-zstd: 4C scales, then a zstd frame of n bytes, which is at most
//     n + n/128 + 1 KiB (zstd's compress bound plus frame and block headers).
//   - png, jpeg, webp: 2·3·H·W + 64 KiB: twice the raw RGB bytes plus room
//     for headers and metadata; an image codec's worst case (noise, stored
//     deflate blocks, JPEG at quality 100) stays below the raw size plus a
//     few percent.
func MaxEncodedLen(id ID, s Shape) int {
	if s.check() != nil {
		return 0
	}
	n := s.Len()
	switch id {
	case IDLearned:
		return 6*n + 16
	case IDRawF32:
		return 4 * n
	case IDInt8Zstd:
		return 4*s.C + n + n/128 + 1024
	case IDPNG, IDJPEG, IDWebP:
		return 2*3*s.H*s.W + 64<<10
	}
	return 0
}
