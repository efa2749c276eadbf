package link

import (
	"container/heap"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"sync"
	"time"
)

// packet is one datagram on its way through a direction.
type packet struct {
	data []byte
	to   netip.AddrPort // Down: the client to send to
	sess *session       // Up: the session whose socket sends it on
	due  time.Duration  // release time, on the relay's clock
	seq  uint64         // arrival order, breaks ties between equal due times
}

// verdict is what admit decided for a datagram.
type verdict int

const (
	admitted verdict = iota
	lost             // random loss
	dropped          // drop-tail queue full
)

// pipe is one direction: the admission model (loss, queue, token bucket,
// delay) and the delay line that a dedicated goroutine drains on time.
type pipe struct {
	cfg    Direction
	header int // per-datagram header bytes counted by the rate limit

	mu  sync.Mutex
	rng *rand.Rand
	// Token bucket, on the relay's clock: tokens (bytes) at time tokT.
	tokens float64
	tokT   time.Duration
	// Datagrams waiting for the rate limiter: their departure times and
	// wire sizes, oldest first, from index qHead on.
	qDepart    []time.Duration
	qSize      []int
	qHead      int
	qBytes     int
	lastDepart time.Duration
	lastDue    time.Duration
	backlog    int // payload bytes held (queue and delay line)
	seq        uint64
	line       pktHeap // the delay line, ordered by due time
	stats      DirStats

	wake chan struct{} // signals the release goroutine that the line changed
}

func newPipe(cfg Direction, header int, seed uint64, stream uint64) *pipe {
	return &pipe{
		cfg:    cfg,
		header: header,
		rng:    rand.New(rand.NewPCG(seed, stream)),
		tokens: float64(cfg.BurstBytes),
		wake:   make(chan struct{}, 1),
	}
}

// admit runs the admission model for a datagram of size payload bytes that
// arrives at now, and returns its release time if it is admitted. It does
// not touch the delay line; the caller holds p.mu.
func (p *pipe) admit(now time.Duration, size int) (time.Duration, verdict) {
	p.stats.Received++
	if p.cfg.Loss > 0 && p.rng.Float64() < p.cfg.Loss {
		p.stats.Lost++
		return 0, lost
	}
	wire := size + p.header
	// Forget datagrams that have left the queue by now.
	for p.qHead < len(p.qDepart) && p.qDepart[p.qHead] <= now {
		p.qBytes -= p.qSize[p.qHead]
		p.qHead++
	}
	if p.qHead > 64 && p.qHead*2 > len(p.qDepart) {
		n := copy(p.qDepart, p.qDepart[p.qHead:])
		copy(p.qSize, p.qSize[p.qHead:])
		p.qDepart, p.qSize, p.qHead = p.qDepart[:n], p.qSize[:n], 0
	}
	waiting := len(p.qDepart) - p.qHead
	// Without a rate limit nothing waits, so only MaxBacklog applies.
	limited := p.cfg.RateBps > 0
	if (limited && p.cfg.QueueBytes > 0 && p.qBytes+wire > p.cfg.QueueBytes) ||
		(limited && p.cfg.QueuePackets > 0 && waiting+1 > p.cfg.QueuePackets) ||
		p.backlog+size > MaxBacklog {
		p.stats.Dropped++
		return 0, dropped
	}
	depart := now
	if p.cfg.RateBps > 0 {
		depart = max(now, p.lastDepart)
		bytesPerNs := p.cfg.RateBps / 8 / 1e9
		depth := float64(max(p.cfg.BurstBytes, wire))
		tokens := min(depth, p.tokens+float64(depart-p.tokT)*bytesPerNs)
		if tokens < float64(wire) {
			wait := time.Duration((float64(wire) - tokens) / bytesPerNs)
			depart += wait
			tokens += float64(wait) * bytesPerNs
		}
		p.tokens = max(0, tokens-float64(wire))
		p.tokT = depart
		p.lastDepart = depart
		if depart > now {
			p.qDepart = append(p.qDepart, depart)
			p.qSize = append(p.qSize, wire)
			p.qBytes += wire
		}
	}
	due := depart + p.cfg.Delay
	if j := p.cfg.Jitter; j > 0 {
		due += time.Duration(p.rng.Int64N(int64(2*j)+1)) - j
		due = max(due, depart)
	}
	if !p.cfg.Reorder {
		due = max(due, p.lastDue)
	}
	p.lastDue = max(p.lastDue, due)
	p.backlog += size
	return due, admitted
}

// enqueue admits pk (arrived at now) and, if admitted, puts it on the delay
// line and wakes the release goroutine.
func (p *pipe) enqueue(now time.Duration, pk *packet) {
	p.mu.Lock()
	due, v := p.admit(now, len(pk.data))
	if v != admitted {
		p.mu.Unlock()
		return
	}
	pk.due = due
	pk.seq = p.seq
	p.seq++
	heap.Push(&p.line, pk)
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Timing of the release goroutine. Go's timers fire late by up to about a
// millisecond (sleeps under 1 ms round up to about 1.1 ms), so a timer is
// set coarseSlack before the due time; the rest is slept with a finer
// sleep where the platform has one (fineSleep, in slices of at most maxFine
// so that a datagram that jumps the line is not missed), down to fineSlack
// before the due time, and the last stretch is spun with runtime.Gosched.
// The figures come from BenchmarkReleaseLateness on a loaded 2-core VM.
var (
	coarseSlack = 2 * time.Millisecond
	fineSlack   = 60 * time.Microsecond
	maxFine     = 500 * time.Microsecond
)

// run releases datagrams from the delay line at their due times until done
// is closed, recording how late each left (DirStats.LateTotal, LateMax).
// clock is the relay's clock; send delivers a datagram.
func (p *pipe) run(done <-chan struct{}, clock func() time.Duration, send func(pk *packet)) {
	if fineSleep != nil {
		preciseThread()
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		p.mu.Lock()
		if len(p.line) == 0 {
			p.mu.Unlock()
			select {
			case <-p.wake:
				continue
			case <-done:
				return
			}
		}
		due := p.line[0].due
		now := clock()
		if now >= due {
			pk := heap.Pop(&p.line).(*packet)
			p.backlog -= len(pk.data)
			late := now - due
			p.stats.LateTotal += late
			p.stats.LateMax = max(p.stats.LateMax, late)
			p.mu.Unlock()
			send(pk)
			continue
		}
		p.mu.Unlock()
		wait := due - now
		switch {
		case wait > coarseSlack:
			timer.Reset(wait - coarseSlack)
			select {
			case <-timer.C:
			case <-p.wake:
				timer.Stop()
			case <-done:
				timer.Stop()
				return
			}
		case wait > fineSlack && fineSleep != nil:
			fineSleep(min(wait-fineSlack, maxFine))
		default:
			runtime.Gosched()
		}
	}
}

// counted records a datagram that left the pipe; ok is whether its send
// succeeded.
func (p *pipe) counted(size int, ok bool) {
	p.mu.Lock()
	if ok {
		p.stats.Forwarded++
		p.stats.Bytes += uint64(size)
		p.stats.WireBytes += uint64(size + p.header)
	} else {
		p.stats.SendErrors++
	}
	p.mu.Unlock()
}

func (p *pipe) snapshot() DirStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// pktHeap orders packets by due time, then arrival.
type pktHeap []*packet

func (h pktHeap) Len() int { return len(h) }
func (h pktHeap) Less(i, j int) bool {
	if h[i].due != h[j].due {
		return h[i].due < h[j].due
	}
	return h[i].seq < h[j].seq
}
func (h pktHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *pktHeap) Push(x any)   { *h = append(*h, x.(*packet)) }
func (h *pktHeap) Pop() any {
	old := *h
	n := len(old)
	pk := old[n-1]
	old[n-1] = nil
	*h = old[:n-1]
	return pk
}
