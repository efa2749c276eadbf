// Package entropy is a rANS entropy coder that is byte-compatible with
// CompressAI's (RansEncoder.encode_with_indexes and
// RansDecoder.decode_with_indexes in compressai/cpp_exts/rans), so that a
// latent coded here decodes there and the other way round.
//
// # Format
//
// The coder is Rans64 (Fabian Giesen's ryg_rans): a 64-bit state that starts
// at and, after the last symbol, returns to L = 2^31; renormalisation moves
// 32-bit words, which are stored little-endian. Symbols are coded against
// quantized CDFs of 16-bit precision (see [Table] and [PMFToQuantizedCDF]).
// The encoder walks the symbols from last to first and writes the stream
// backwards, so that the decoder reads it forwards; an encoded string is the
// flushed final state (8 bytes) followed by the renormalisation words.
//
// Each symbol has a row of the table (its index). For a row with offset o and
// CDF length n, the in-range symbols are o, o+1, ..., o+n-3 (value s-o in
// [0, n-2)); value n-2 is the escape symbol. A symbol s outside that range is
// coded as the escape symbol followed by bypass coding of
//
//	raw = -2*(s-o) - 1       if s < o
//	raw = 2*(s-o-(n-2))      if s >= o+n-2
//
// in 4-bit chunks, each coded with probability 1/16: first the chunk count
// (in chunks of at most 15: 15, 15, ..., remainder), then the chunks of raw
// from least to most significant.
//
// # Accepted symbols
//
// CompressAI's encoder needs 8 chunks for raw >= 2^28, shifts a 32-bit value
// by 32 bits to find that out, and loops forever. This package therefore
// accepts exactly the symbols CompressAI can code: for a row with offset o and
// CDF length n, every int32 s with
//
//	o - 2^27 <= s <= o + (n-2) + 2^27 - 1
//
// that is, up to 2^27 below or above the row's in-range symbols. [Encoder.Encode]
// returns an error wrapping [ErrSymbolRange] for any other symbol, and never
// hangs. Every valid stream decodes to symbols in that range.
//
// # Decoding hostile input
//
// [Decoder.Decode] never panics, never reads out of bounds and runs in time
// linear in the number of symbols. It returns an error wrapping [ErrCorrupt]
// when the data is truncated, has trailing words, does not end in the initial
// state L, or holds a bypass code that CompressAI's encoder cannot produce
// (more than 7 chunks, or a most significant chunk of zero). As a result a
// stream that decodes without error re-encodes to the same bytes.
package entropy
