package link

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// The trace link's admission model runs on a virtual clock here, against a
// plain re-statement of mahimahi's LinkQueue (link_queue.cc: rationalize,
// with DropTailPacketQueue in front), so these tests are exact.

// arrival is a datagram offered to a link: when, and its UDP payload.
type arrival struct {
	at   time.Duration
	size int
}

// mmLink walks the opportunities of a trace (times, from expand) one by one
// as mm-link does, with a drop-tail queue of qBytes and qPackets (0: no
// limit) counting wire bytes, and returns each datagram's departure, or -1
// for one it dropped. Before a datagram is queued, every opportunity up to
// its arrival is used up, so an opportunity carries only datagrams that
// arrived before it.
func mmLink(t *testing.T, times []time.Duration, arrivals []arrival, header, qBytes, qPackets int) []time.Duration {
	t.Helper()
	depart := make([]time.Duration, len(arrivals))
	var queue []int // datagrams waiting, not the one in transit
	queueBytes := 0
	transit, transitLeft := -1, 0
	next := 0 // the next opportunity
	wire := func(i int) int { return arrivals[i].size + header }
	burn := func() {
		if next == len(times) {
			t.Fatal("the reference ran out of opportunities: expand more repetitions")
		}
		left := OpportunityBytes
		for left > 0 {
			if transit < 0 {
				if len(queue) == 0 {
					break
				}
				transit, queue = queue[0], queue[1:]
				queueBytes -= wire(transit)
				transitLeft = wire(transit)
			}
			n := min(left, transitLeft)
			left -= n
			transitLeft -= n
			if transitLeft == 0 {
				depart[transit] = times[next]
				transit = -1
			}
		}
		next++
	}
	for i, a := range arrivals {
		for next < len(times) && times[next] <= a.at {
			burn()
		}
		if (qBytes > 0 && queueBytes+wire(i) > qBytes) || (qPackets > 0 && len(queue)+1 > qPackets) {
			depart[i] = -1
			continue
		}
		queue = append(queue, i)
		queueBytes += wire(i)
	}
	for len(queue) > 0 || transit >= 0 {
		burn()
	}
	return depart
}

// offered makes n arrivals with gaps drawn around meanGap, at random
// nanoseconds or on whole milliseconds (where they meet opportunities), of
// payloads up to maxSize.
func offered(rng *rand.Rand, n int, meanGap time.Duration, maxSize int, wholeMs bool) []arrival {
	out := make([]arrival, n)
	at := time.Duration(0)
	for i := range out {
		at += time.Duration(rng.Int64N(2*int64(meanGap) + 1))
		if wholeMs {
			at = at.Truncate(ms)
		}
		size := rng.IntN(maxSize + 1)
		if rng.IntN(20) == 0 {
			size = 1472 // a full 1500-byte IP packet
		}
		out[i] = arrival{at, size}
	}
	return out
}

// TestTraceMatchesMahimahi offers random datagrams to trace links, light and
// heavy loads, with and without queue limits, and checks every departure
// and drop against the reference mm-link walk.
func TestTraceMatchesMahimahi(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	// A trace with bursts, gaps and outages of up to 700 ms: about 2.5
	// opportunities per ms, 30 Mbit/s.
	lines := randomLines(rng, 3000)
	tests := []struct {
		name     string
		lines    []int64
		gap      time.Duration
		maxSize  int
		wholeMs  bool
		qB, qP   int
		delay    time.Duration
		reps     int
		arrivals int
	}{
		{"light load", lines, 2 * ms, 1472, false, 0, 0, 0, 3, 3000},
		{"overload, packet queue", lines, 100 * time.Microsecond, 1472, false, 0, 20, 0, 3, 20000},
		{"overload, byte queue", lines, 100 * time.Microsecond, 1472, false, 30000, 0, 0, 3, 20000},
		{"both limits, small datagrams", lines, 30 * time.Microsecond, 400, false, 20000, 50, 0, 3, 40000},
		{"on whole milliseconds", lines, ms, 1472, true, 0, 30, 0, 3, 5000},
		{"jumbo datagrams", lines, 2 * ms, 9000, false, 100000, 0, 0, 3, 3000},
		{"sparse trace, delay", []int64{0, 0, 40, 40, 40, 100}, 5 * ms, 1472, false, 0, 10, 25 * ms, 60, 1000},
		{"one opportunity a period", []int64{7}, 3 * ms, 1472, false, 0, 5, 0, 3000, 5000},
		{"unlimited queue", lines, 200 * time.Microsecond, 1472, false, 0, 0, 0, 30, 20000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := mustTrace(t, tc.lines...)
			arr := offered(rng, tc.arrivals, tc.gap, tc.maxSize, tc.wholeMs)
			want := mmLink(t, expand(tc.lines, tc.reps), arr, HeaderIPv4, tc.qB, tc.qP)
			p := newPipe(Direction{Trace: tr, Delay: tc.delay, QueueBytes: tc.qB, QueuePackets: tc.qP}, HeaderIPv4, 1, 1)
			drops := 0
			for i, a := range arr {
				due, v := p.admit(a.at, a.size)
				got := due - tc.delay
				if v != admitted {
					got = -1
					drops++
				}
				if got != want[i] {
					t.Fatalf("datagram %d (%d bytes at %v): leaves at %v (verdict %v), mm-link %v", i, a.size, a.at, got, v, want[i])
				}
			}
			t.Logf("%d datagrams, %d dropped", len(arr), drops)
			if (tc.qB > 0 || tc.qP > 0) && strings.HasPrefix(tc.name, "overload") && drops == 0 {
				t.Error("an overloaded link dropped nothing")
			}
		})
	}
}

// TestTraceDeliversCapacity offers more than the trace carries and checks
// the bytes that leave in each 100 ms window against the trace's capacity
// in that window: a link that always has a datagram waiting uses every
// opportunity in full, so the two differ only by the datagram that spans a
// window's edge, at most one datagram each side.
func TestTraceDeliversCapacity(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	lines := randomLines(rng, 5000)
	tr := mustTrace(t, lines...)
	for _, size := range []int{1472, 1172, 100} {
		t.Run(fmt.Sprint(size+HeaderIPv4, "B"), func(t *testing.T) {
			const window = 100 * ms
			duration := (2 * tr.Period()).Truncate(window)
			p := newPipe(Direction{Trace: tr, QueuePackets: 1000}, HeaderIPv4, 1, 1)
			// Twice the trace's peak over any millisecond.
			gap := time.Duration(float64(ms) * float64(size+HeaderIPv4) / (2 * 4 * OpportunityBytes))
			got := make([]int64, duration/window)
			for at := time.Duration(0); at < duration+time.Second; at += gap {
				due, v := p.admit(at, size)
				if v == admitted && due < duration {
					got[due/window] += int64(size + HeaderIPv4)
				}
			}
			capacity, err := tr.Capacity(window, duration)
			if err != nil {
				t.Fatal(err)
			}
			// Opportunities at time 0 carry nothing: the first datagram
			// arrives at 0 and waits for one after it.
			capacity[0] = tr.CapacityBetween(1, window)
			tol := int64(2 * (size + HeaderIPv4))
			var sumGot, sumCap int64
			for k := range got {
				sumGot += got[k]
				sumCap += capacity[k]
				if d := got[k] - capacity[k]; d < -tol || d > tol {
					t.Errorf("window %d: delivered %d bytes, capacity %d", k, got[k], capacity[k])
				}
			}
			t.Logf("over %v: delivered %d bytes of a capacity of %d (%.5f); %d dropped at the queue", duration, sumGot, sumCap,
				float64(sumGot)/float64(sumCap), p.stats.Dropped)
		})
	}
}

// TestTraceIdleWastes checks that opportunities nobody waits for are lost:
// a datagram that comes after an idle stretch leaves in the first
// opportunity after it arrives, not earlier.
func TestTraceIdleWastes(t *testing.T) {
	tr := mustTrace(t, 0, 10, 10, 20, 30, 40)
	p := newPipe(Direction{Trace: tr, Delay: 5 * ms}, HeaderIPv4, 1, 1)
	for _, c := range []struct{ at, due time.Duration }{
		{0, 15 * ms},       // the opportunity at 0 has passed by the time it arrives
		{ms, 15 * ms},      // shares the first at 10 ms with the one before (58 + 58 bytes)
		{12 * ms, 25 * ms}, // the second at 10 ms went unused
		{39 * ms, 45 * ms}, // the period's last line, at 40 ms
		{40 * ms, 55 * ms}, // at 40 ms both opportunities at 40 (the period's last line and the repetition's first) have passed
	} {
		due, v := p.admit(c.at, 30)
		if v != admitted || due != c.due {
			t.Errorf("arrives at %v: due %v (%v), want %v", c.at, due, v, c.due)
		}
	}
}
