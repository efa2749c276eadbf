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
	// Trace: the opportunity (number trJ, from 0; -1 before the first
	// datagram) in which the last datagram finished, its time trT, and
	// the bytes of it that datagram left unused.
	trJ    int64
	trT    time.Duration
	trLeft int64
	// Datagrams waiting for the rate limiter or the trace: the times they
	// leave the queue and their wire sizes, oldest first, from index qHead
	// on.
	qLeave     []time.Duration
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
		trJ:    -1,
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
	for p.qHead < len(p.qLeave) && p.qLeave[p.qHead] <= now {
		p.qBytes -= p.qSize[p.qHead]
		p.qHead++
	}
	if p.qHead > 64 && p.qHead*2 > len(p.qLeave) {
		n := copy(p.qLeave, p.qLeave[p.qHead:])
		copy(p.qSize, p.qSize[p.qHead:])
		p.qLeave, p.qSize, p.qHead = p.qLeave[:n], p.qSize[:n], 0
	}
	waiting := len(p.qLeave) - p.qHead
	// Without a rate limit or a trace nothing waits, so only MaxBacklog
	// applies.
	limited := p.cfg.RateBps > 0 || p.cfg.Trace != nil
	if (limited && p.cfg.QueueBytes > 0 && p.qBytes+wire > p.cfg.QueueBytes) ||
		(limited && p.cfg.QueuePackets > 0 && waiting+1 > p.cfg.QueuePackets) ||
		p.backlog+size > MaxBacklog {
		p.stats.Dropped++
		return 0, dropped
	}
	depart := now
	switch {
	case p.cfg.Trace != nil:
		var leave time.Duration
		leave, depart = p.serveTrace(now, wire)
		p.qLeave = append(p.qLeave, leave)
		p.qSize = append(p.qSize, wire)
		p.qBytes += wire
	case p.cfg.RateBps > 0:
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
			p.qLeave = append(p.qLeave, depart)
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

// serveTrace works out when a datagram of wire bytes that arrives at now
// leaves a trace link, as mahimahi's mm-link serves its queue: each
// opportunity carries OpportunityBytes of the datagrams that arrived before
// it, in order; a datagram may take the bytes an earlier one left in an
// opportunity and may span several opportunities; bytes nobody is waiting
// for are lost. It returns when the datagram leaves the queue (the first
// opportunity that carries some of it) and when it has been carried
// entirely (its departure).
func (p *pipe) serveTrace(now time.Duration, wire int) (leave, depart time.Duration) {
	tr := p.cfg.Trace
	need := int64(wire)
	var j int64
	if p.trJ >= 0 && now < p.trT && p.trLeft > 0 {
		// The datagram in front finishes in an opportunity still to come
		// and leaves bytes of it; this one starts there.
		j, leave = p.trJ, p.trT
		if need <= p.trLeft {
			p.trLeft -= need
			return leave, leave
		}
		need -= p.trLeft
		j++
	} else {
		// The first opportunity after now, and after the datagram in front.
		j = tr.countBefore(now + 1)
		if p.trJ >= 0 {
			j = max(j, p.trJ+1)
		}
		leave = tr.at(j)
	}
	k := (need + OpportunityBytes - 1) / OpportunityBytes // opportunities it needs besides those bytes
	p.trJ = j + k - 1
	p.trT = tr.at(p.trJ)
	p.trLeft = k*OpportunityBytes - need
	return leave, p.trT
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
