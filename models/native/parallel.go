package native

import "sync"

// parallelFor splits [0, n) into at most threads contiguous chunks and runs
// f on each, the first on the calling goroutine.
func parallelFor(n, threads int, f func(lo, hi int)) {
	if threads <= 1 || n <= 1 {
		f(0, n)
		return
	}
	t := min(threads, n)
	var wg sync.WaitGroup
	wg.Add(t - 1)
	for k := 1; k < t; k++ {
		go func() {
			defer wg.Done()
			f(k*n/t, (k+1)*n/t)
		}()
	}
	f(0, n/t)
	wg.Wait()
}

// parallelWorkers runs f(worker, lo, hi) over [0, n) in chunks of size
// chunk, handed out dynamically to at most threads workers; worker is in
// [0, threads) so that f can use per-worker scratch memory.
func parallelWorkers(n, chunk, threads int, f func(worker, lo, hi int)) {
	chunks := (n + chunk - 1) / chunk
	if threads <= 1 || chunks <= 1 {
		for lo := 0; lo < n; lo += chunk {
			f(0, lo, min(lo+chunk, n))
		}
		return
	}
	t := min(threads, chunks)
	var mu sync.Mutex
	next := 0
	work := func(w int) {
		for {
			mu.Lock()
			c := next
			next++
			mu.Unlock()
			if c >= chunks {
				return
			}
			f(w, c*chunk, min((c+1)*chunk, n))
		}
	}
	var wg sync.WaitGroup
	wg.Add(t - 1)
	for w := 1; w < t; w++ {
		go func() {
			defer wg.Done()
			work(w)
		}()
	}
	work(0)
	wg.Wait()
}
