package learn

import "math/rand/v2"

// reservoir is the replay buffer: a uniform sample, without replacement, of
// every feature vector offered so far (Vitter's algorithm R), in at most
// capacity x dim float32 values, all allocated up front.
type reservoir struct {
	capacity, dim int
	x             []float32 // len(y) vectors of dim features
	y             []uint16
	offered       uint64
}

func newReservoir(capacity, dim int) reservoir {
	return reservoir{capacity: capacity, dim: dim, x: make([]float32, 0, capacity*dim), y: make([]uint16, 0, capacity)}
}

func (r *reservoir) len() int { return len(r.y) }

func (r *reservoir) at(i int) ([]float32, int) { return r.x[i*r.dim : (i+1)*r.dim], int(r.y[i]) }

// add offers one sample: kept while the buffer has room, and afterwards in
// place of a random one with probability capacity/offered.
func (r *reservoir) add(x []float32, y int, rng *rand.Rand) {
	r.offered++
	if len(r.y) < r.capacity {
		r.x = append(r.x, x...)
		r.y = append(r.y, uint16(y))
		return
	}
	if j := rng.Uint64N(r.offered); j < uint64(r.capacity) {
		copy(r.x[int(j)*r.dim:], x)
		r.y[j] = uint16(y)
	}
}

// bytes is the memory the buffer holds at capacity.
func (r *reservoir) bytes() int { return r.capacity * (4*r.dim + 2) }
