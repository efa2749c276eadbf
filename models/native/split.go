package native

import "github.com/splitstream/splitstream/models/native/internal/gemm"

// workSplit cuts a product of m rows (output channels) by n columns
// (output positions) into items for a team: bands of rows by tiles of
// columns, both on micro-tile boundaries, so that no item computes
// padding the whole product would not.
type workSplit struct {
	m, n         int
	band, tile   int // rows per band, columns per tile
	bands, tiles int
}

// minItemWork is the fewest multiply-adds worth an item of its own: a few
// microseconds of the micro-kernel, well above what handing out an item
// costs.
const minItemWork = 1 << 19

// splitWork splits an m x n product of depth k for threads workers, with
// tiles of at most maxCols columns (to keep a tile's working set in
// cache). One thread gets the fewest items the cache bound allows; more
// threads get about two items each, as long as items stay above
// minItemWork, cut by columns first and by rows when there are too few
// column panels.
func splitWork(m, n, k, threads, maxCols int) workSplit {
	mr, nr := gemm.TileShape()
	panels := ceilDiv(n, nr)
	rowTiles := ceilDiv(m, mr)
	tiles := ceilDiv(n, max(maxCols/nr*nr, nr))
	bands := 1
	if threads > 1 {
		want := min(2*threads, max(1, m*n*k/minItemWork))
		tiles = max(tiles, min(panels, want))
		bands = min(rowTiles, ceilDiv(want, tiles))
	}
	s := workSplit{m: m, n: n}
	s.tile = ceilDiv(panels, tiles) * nr
	s.tiles = ceilDiv(n, s.tile)
	s.band = ceilDiv(rowTiles, bands) * mr
	s.bands = ceilDiv(m, s.band)
	return s
}

func (s workSplit) items() int { return s.bands * s.tiles }

// item returns item i's rows [r0, r1) and columns [j0, j1).
func (s workSplit) item(i int) (r0, r1, j0, j1 int) {
	b, t := i/s.tiles, i%s.tiles
	r0, j0 = b*s.band, t*s.tile
	return r0, min(r0+s.band, s.m), j0, min(j0+s.tile, s.n)
}

// packBands packs the m x k matrix a (row stride lda) in the split's row
// bands, one PackedA each.
func (s workSplit) packBands(a []float32, k, lda int) []*gemm.PackedA {
	out := make([]*gemm.PackedA, s.bands)
	for b := range out {
		r0 := b * s.band
		out[b] = gemm.PackA(min(s.band, s.m-r0), k, a[r0*lda:], lda)
	}
	return out
}
