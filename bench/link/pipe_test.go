package link

import (
	"testing"
	"time"
)

// The admission model runs on a virtual clock here, so these tests are
// exact: no sockets, no timers.

func TestTokenBucketSpacing(t *testing.T) {
	tests := []struct {
		name  string
		rate  float64
		burst int
		size  int
		n     int
	}{
		{"1Mbit/1000B", 1e6, 0, 972, 50},
		{"5Mbit/1252B", 5e6, 0, 1252, 200},
		{"50Mbit/small", 50e6, 0, 100, 1000},
		{"10Mbit/burst10k", 10e6, 10000, 972, 100},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newPipe(Direction{RateBps: tc.rate, BurstBytes: tc.burst}, HeaderIPv4, 1, 1)
			wire := float64(tc.size + HeaderIPv4)
			// An idle link that has filled its bucket lets the first
			// max(burst, one datagram) bytes through at once.
			start := time.Second
			var last time.Duration
			for i := range tc.n {
				due, v := p.admit(start, tc.size)
				if v != admitted {
					t.Fatalf("datagram %d: verdict %v", i, v)
				}
				last = due
			}
			free := max(float64(tc.burst), wire)
			free = float64(int(free/wire)) * wire // whole datagrams only
			want := start + time.Duration((float64(tc.n)*wire-free)*8/tc.rate*1e9)
			if d := last - want; d < -time.Microsecond || d > time.Microsecond {
				t.Errorf("last datagram leaves at %v, want %v", last, want)
			}
		})
	}
}

func TestTokenBucketLongRunRate(t *testing.T) {
	// Datagrams offered at twice the rate for 10 s of virtual time: the
	// link must carry exactly its rate, headers counted.
	const rate = 2e6
	p := newPipe(Direction{RateBps: rate}, HeaderIPv4, 1, 1)
	size := 1200
	gap := time.Duration(float64(size+HeaderIPv4) * 8 / (2 * rate) * 1e9)
	var last time.Duration
	n := 0
	for now := time.Duration(0); now < 10*time.Second; now += gap {
		due, v := p.admit(now, size)
		if v == admitted {
			last = due
			n++
		}
	}
	got := float64(n*(size+HeaderIPv4)) * 8 / last.Seconds()
	if r := got / rate; r < 0.999 || r > 1.001 {
		t.Errorf("carried %.0f bit/s, want %.0f", got, float64(rate))
	}
}

func TestDropTail(t *testing.T) {
	tests := []struct {
		name       string
		dir        Direction
		size, n    int
		wantPassed int
	}{
		// Tokens start empty, so every datagram waits: 10000 bytes hold
		// nine 1028-byte datagrams.
		{"bytes", Direction{RateBps: 1e6, QueueBytes: 10000}, 1000, 100, 9},
		{"packets", Direction{RateBps: 1e6, QueuePackets: 5}, 1000, 100, 5},
		{"both/bytes bind", Direction{RateBps: 1e6, QueueBytes: 3000, QueuePackets: 5}, 1000, 100, 2},
		{"unlimited", Direction{RateBps: 1e6}, 1000, 100, 100},
		{"no rate, no queue", Direction{QueueBytes: 1}, 1000, 100, 100},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newPipe(tc.dir, HeaderIPv4, 1, 1)
			passed := 0
			for range tc.n {
				if _, v := p.admit(0, tc.size); v == admitted {
					passed++
				}
			}
			if passed != tc.wantPassed || p.stats.Dropped != uint64(tc.n-passed) {
				t.Errorf("admitted %d, dropped %d; want %d admitted", passed, p.stats.Dropped, tc.wantPassed)
			}
		})
	}
}

func TestQueueDrains(t *testing.T) {
	p := newPipe(Direction{RateBps: 1e6, QueuePackets: 2}, HeaderIPv4, 1, 1)
	var dues []time.Duration
	for range 3 {
		due, v := p.admit(0, 1000)
		if v == admitted {
			dues = append(dues, due)
		}
	}
	if len(dues) != 2 {
		t.Fatalf("admitted %d of 3 into a 2-packet queue", len(dues))
	}
	// Once the first has left, there is room for one more.
	if _, v := p.admit(dues[0], 1000); v != admitted {
		t.Errorf("queue did not drain at %v", dues[0])
	}
	if _, v := p.admit(dues[0], 1000); v != dropped {
		t.Errorf("queue over its limit after draining one")
	}
}

func TestDelayAndJitter(t *testing.T) {
	tests := []struct {
		name    string
		dir     Direction
		reorder bool
	}{
		{"delay", Direction{Delay: 20 * time.Millisecond}, false},
		{"jitter in order", Direction{Delay: 20 * time.Millisecond, Jitter: 5 * time.Millisecond}, false},
		{"jitter reorder", Direction{Delay: 20 * time.Millisecond, Jitter: 5 * time.Millisecond, Reorder: true}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := newPipe(tc.dir, HeaderIPv4, 7, 1)
			prev := time.Duration(0)
			inversions := 0
			for i := range 1000 {
				now := time.Duration(i) * 100 * time.Microsecond
				due, v := p.admit(now, 100)
				if v != admitted {
					t.Fatal("dropped on a link without limits")
				}
				lo, hi := now+tc.dir.Delay-tc.dir.Jitter, now+tc.dir.Delay+tc.dir.Jitter
				if due < lo || (tc.reorder && due > hi) {
					t.Fatalf("datagram %d due %v after arrival, want in [%v, %v]", i, due-now, lo-now, hi-now)
				}
				if due < prev {
					inversions++
				}
				prev = max(prev, due)
			}
			if tc.reorder != (inversions > 0) {
				t.Errorf("%d reordered datagrams with Reorder=%v", inversions, tc.reorder)
			}
		})
	}
}

func TestLossSeeded(t *testing.T) {
	run := func(seed uint64) []verdict {
		p := newPipe(Direction{Loss: 0.2}, HeaderIPv4, seed, 1)
		v := make([]verdict, 2000)
		for i := range v {
			_, v[i] = p.admit(time.Duration(i), 100)
		}
		return v
	}
	a, b, c := run(1), run(1), run(2)
	same, lostA := true, 0
	diff := false
	for i := range a {
		same = same && a[i] == b[i]
		diff = diff || a[i] != c[i]
		if a[i] == lost {
			lostA++
		}
	}
	if !same {
		t.Error("the same seed dropped different datagrams")
	}
	if !diff {
		t.Error("seeds 1 and 2 dropped the same datagrams")
	}
	if lostA < 300 || lostA > 500 { // 400 +- 5 sigma
		t.Errorf("lost %d of 2000 at 20%%", lostA)
	}
}
