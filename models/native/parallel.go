package native

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// team is a set of worker goroutines that one workspace's kernels share
// for their parallel loops. Between loops the workers spin for a short
// while before parking: a run issues a parallel loop every few
// milliseconds, and waking a parked thread on a busy machine can take
// longer than the loop itself.
//
// A nil *team runs everything on the calling goroutine.
type team struct {
	workers int // goroutines besides the caller
	gen     atomic.Uint64
	quit    atomic.Bool
	sleep   []atomic.Bool
	wake    []parker
	cur     atomic.Pointer[job]
}

// job is one parallel loop.
type job struct {
	f       func(worker, item int)
	n       int64
	threads int // workers allowed, the caller included
	next    atomic.Int64
	done    atomic.Int64
}

// spinFor is how long an idle worker spins before parking: long enough to
// bridge the gap between two steps of a run, short enough not to burn a
// core between runs.
const spinFor = 200 * time.Microsecond

func newTeam(threads int) *team {
	if threads <= 1 {
		return nil
	}
	t := &team{workers: threads - 1, sleep: make([]atomic.Bool, threads-1), wake: make([]parker, threads-1)}
	for w := range t.workers {
		go t.work(w)
	}
	return t
}

// prewake unparks the workers ahead of the first loop of a run, so that
// the time the OS takes to schedule them overlaps the caller's setup.
func (t *team) prewake() {
	if t == nil {
		return
	}
	for w := range t.workers {
		if t.sleep[w].CompareAndSwap(true, false) {
			t.wake[w].unpark()
		}
	}
}

// close stops the workers.
func (t *team) close() {
	if t == nil {
		return
	}
	t.quit.Store(true)
	t.gen.Add(1)
	for w := range t.workers {
		t.wake[w].unpark()
	}
}

func (t *team) work(w int) {
	seen := t.gen.Load()
	for {
		if !t.waitGen(w, seen) {
			return
		}
		seen = t.gen.Load()
		if j := t.cur.Load(); j != nil && w+1 < j.threads {
			j.loop(w + 1)
		}
	}
}

// waitGen waits until the generation moves past seen; false means quit.
func (t *team) waitGen(w int, seen uint64) bool {
	start := time.Now()
	for spins := 0; t.gen.Load() == seen; spins++ {
		if spins&15 != 15 {
			continue
		}
		if time.Since(start) < spinFor {
			osYield()
			continue
		}
		// Park: announce, re-check, then block until the dispatcher
		// (who clears the flag) sends the token.
		t.sleep[w].Store(true)
		if t.gen.Load() != seen && t.sleep[w].CompareAndSwap(true, false) {
			break
		}
		t.wake[w].park()
		start = time.Now()
	}
	return !t.quit.Load()
}

// loop takes items of the job until none are left.
func (j *job) loop(worker int) {
	for {
		i := j.next.Add(1) - 1
		if i >= j.n {
			return
		}
		j.f(worker, int(i))
		j.done.Add(1)
	}
}

// run calls f(worker, item) for every item in [0, n) on at most threads
// goroutines; worker is in [0, threads). Workers that arrive late find
// the items taken; run returns when every item is done.
func (t *team) run(n, threads int, f func(worker, item int)) {
	if t == nil || threads <= 1 || n <= 1 {
		for i := range n {
			f(0, i)
		}
		return
	}
	j := &job{f: f, n: int64(n), threads: threads}
	t.cur.Store(j)
	t.gen.Add(1)
	for w := range min(t.workers, threads-1) {
		if t.sleep[w].CompareAndSwap(true, false) {
			t.wake[w].unpark()
		}
	}
	j.loop(0)
	// Wait for the items that workers took. Yield the P, not only the
	// thread: a worker holding an item may be waiting for a P, and with
	// every P spinning here it would wait for the runtime's preemption.
	for spins := 0; j.done.Load() < j.n; spins++ {
		if spins&15 == 15 {
			runtime.Gosched()
		}
	}
}

// parallelFor splits [0, n) into at most threads contiguous chunks and
// runs f on each.
func (t *team) parallelFor(n, threads int, f func(lo, hi int)) {
	if t == nil || threads <= 1 || n <= 1 {
		f(0, n)
		return
	}
	c := min(threads, n)
	t.run(c, c, func(_, k int) { f(k*n/c, (k+1)*n/c) })
}

// parallelWorkers runs f(worker, lo, hi) over [0, n) in chunks of size
// chunk, handed out dynamically; worker is in [0, threads) so that f can
// use per-worker scratch memory.
func (t *team) parallelWorkers(n, chunk, threads int, f func(worker, lo, hi int)) {
	if t == nil || threads <= 1 {
		// On the caller alone, without the wrapping closure (and its
		// allocation).
		for lo := 0; lo < n; lo += chunk {
			f(0, lo, min(lo+chunk, n))
		}
		return
	}
	chunks := (n + chunk - 1) / chunk
	t.run(chunks, threads, func(w, c int) { f(w, c*chunk, min((c+1)*chunk, n)) })
}

// chunked runs f over [0, n) in parallel chunks when n is large.
func (t *team) chunked(n, threads int, f func(lo, hi int)) {
	if n < parallelMin {
		threads = 1
	}
	t.parallelFor(n, threads, f)
}

// parker is a one-token semaphore on which a team worker parks. It parks
// the goroutine, which gives its P back to the Go scheduler at once. (A
// worker blocked in futex(2) wakes faster, 30-80 us, but keeps its P until
// the runtime's monitor takes it back, up to 10 ms later: with edge, cloud
// and their workers in one process on 2 cores, the network goroutines
// waited, docs/DECISIONS.md.)
type parker struct {
	once sync.Once
	c    chan struct{}
}

func (p *parker) ch() chan struct{} {
	p.once.Do(func() { p.c = make(chan struct{}, 1) })
	return p.c
}

// park blocks until a token is there and takes it.
func (p *parker) park() { <-p.ch() }

// unpark leaves a token (at most one is kept).
func (p *parker) unpark() {
	select {
	case p.ch() <- struct{}{}:
	default:
	}
}
