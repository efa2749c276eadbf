package link_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/splitstream/splitstream/bench/link"
	"github.com/splitstream/splitstream/bench/link/probe"
)

// step is a stretch of a synthetic trace at a constant rate (0: an outage).
type step struct {
	dur  time.Duration
	rate float64 // bit/s
}

// stepTrace makes a trace whose opportunities are spread evenly over each
// step at its rate: in millisecond t of a step, as many as the step's
// count has grown by then. Its last line is its length.
func stepTrace(t testing.TB, name string, steps ...step) *link.Trace {
	t.Helper()
	var b strings.Builder
	var end int64 // ms
	last := int64(-1)
	for _, s := range steps {
		perMs := s.rate / 8 / link.OpportunityBytes / 1000
		n := int64(s.dur / time.Millisecond)
		for i := range n {
			for range int64(math.Floor(float64(i+1)*perMs)) - int64(math.Floor(float64(i)*perMs)) {
				fmt.Fprintln(&b, end+i+1)
				last = end + i + 1
			}
		}
		end += n
	}
	if last != end {
		fmt.Fprintln(&b, end)
	}
	tr, err := link.ParseTrace(strings.NewReader(b.String()), name, link.DefaultMaxOpportunities)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// floodTrace floods the uplink of a relay with a trace, queue and delay
// for duration, at 1.5 times the trace's peak over 50 ms, with full
// 1500-byte datagrams, and returns the flood with the relay's start and
// counters.
func floodTrace(t *testing.T, tr *link.Trace, delay time.Duration, duration time.Duration) (probe.FloodResult, time.Time, link.DirStats) {
	t.Helper()
	caps, err := tr.Capacity(50*time.Millisecond, duration)
	if err != nil {
		t.Fatal(err)
	}
	peak := float64(slices.Max(caps)) * 8 / 0.050
	ctx, cancel := context.WithTimeout(context.Background(), duration+30*time.Second)
	defer cancel()
	dst := listenLoopback(t)
	relay, err := link.NewRelay(ctx, "127.0.0.1:0", dst.LocalAddr().String(),
		link.Config{Up: link.Direction{Trace: tr, Delay: delay, QueuePackets: 400}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	// Beyond the compared windows, so that the queue never runs dry in them.
	res, err := probe.Flood(ctx, listenLoopback(t), dst, relay.Addr(), probe.FloodConfig{
		RateBps: 1.5 * peak, Header: link.HeaderIPv4, Size: link.OpportunityBytes - link.HeaderIPv4,
		Duration: duration + 300*time.Millisecond, Wait: 500 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	return res, relay.Start(), relay.Stats().Up
}

// TestTraceCapacity floods a trace link through the relay and compares the
// bytes that reach the far end in each 250 ms window (less the link's
// delay) with the trace's capacity in that window. The offered load is well
// above the trace and the queue holds 400 datagrams, so a datagram always
// waits and every opportunity is used in full.
//
// The two differ because of timing only: a datagram reaches the receiver a
// little after its opportunity plus the delay (the relay releases it
// 0.1-0.3 ms late, up to a few ms on this busy machine, then loopback and
// the receiving goroutine add their own), so the datagrams of the last ε of
// a window may be counted in the next. Each window is allowed the capacity
// of ε = 5 ms at each edge, plus one datagram at each edge. The first
// window is left out: the flood starts a few ms after the relay, with an
// empty queue. One bound holds whatever the load and fails at once: the
// receiver can never have more bytes than the trace has carried by then.
func TestTraceCapacity(t *testing.T) {
	exclusive(t)
	cases := []struct {
		name     string
		trace    func(t *testing.T) *link.Trace
		duration time.Duration
	}{
		{"steps with an outage", func(t *testing.T) *link.Trace {
			return stepTrace(t, "steps", step{time.Second, 8e6}, step{500 * time.Millisecond, 0},
				step{1500 * time.Millisecond, 3e6}, step{time.Second, 12e6})
		}, 4 * time.Second},
		{"Verizon-LTE-short.up", func(t *testing.T) *link.Trace {
			dir := os.Getenv("SPLITSTREAM_TRACES")
			if dir == "" {
				t.Skip("SKIPPED: set SPLITSTREAM_TRACES to the folder of the mahimahi traces to run this case")
			}
			tr, err := link.LoadTrace(filepath.Join(dir, "Verizon-LTE-short.up"))
			if err != nil {
				t.Fatal(err)
			}
			return tr
		}, 4 * time.Second},
	}
	const (
		delay  = 20 * time.Millisecond
		window = 250 * time.Millisecond
		eps    = 5 * time.Millisecond
		size   = link.OpportunityBytes
	)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr := tc.trace(t)
			n := int(tc.duration / window)
			var worst float64
			var figures []string
			watch := probe.WatchCPU()
			for attempt := 1; attempt <= 3; attempt++ {
				res, start, st := floodTrace(t, tr, delay, tc.duration)
				origin := start.Add(delay)
				checkNeverAhead(t, tr, res, origin, size)
				got := res.Windows(origin, window, n, size)
				worst, figures = 0, nil
				for k := 1; k < n; k++ {
					a, b := time.Duration(k)*window, time.Duration(k+1)*window
					want := tr.CapacityBetween(a, b)
					tol := 2*size + tr.CapacityBetween(a-eps, a) + tr.CapacityBetween(b-eps, b)
					off := float64(got[k]-want) / float64(tol)
					worst = max(worst, math.Abs(off))
					figures = append(figures, fmt.Sprintf("%d/%d", got[k], want))
				}
				t.Logf("attempt %d: bytes delivered/capacity per %v window from %v: %s; worst error %.2f of the tolerance; "+
					"%d sent, %d forwarded, %d dropped at the queue, released %v late on average, %v at most",
					attempt, window, window, strings.Join(figures, " "), worst, res.Sent, st.Forwarded, st.Dropped, st.MeanLate(), st.LateMax)
				if st.Dropped == 0 {
					t.Errorf("an overloaded link with a 400-datagram queue dropped nothing")
				}
				if worst <= 1 {
					break
				}
			}
			if worst > 1 {
				if busy, cpu := watch.Busy(); busy {
					t.Skipf("SKIPPED: a window is %.2f times its tolerance off the trace on a busy machine (%s)", worst, cpu)
				}
				t.Errorf("a window is %.2f times its tolerance off the trace", worst)
			}
		})
	}
}

// checkNeverAhead checks that by every arrival the receiver has had no more
// bytes than the trace carried up to then (less the delay, which origin
// includes): the relay never sends a datagram before its due time.
func checkNeverAhead(t *testing.T, tr *link.Trace, res probe.FloodResult, origin time.Time, size int) {
	t.Helper()
	arr := slices.Clone(res.Arrivals)
	slices.Sort(arr)
	shift := res.Start.Sub(origin)
	for i, a := range arr {
		at := a + shift
		if got, capacity := int64(i+1)*int64(size), tr.CapacityBetween(0, at+1); got > capacity {
			t.Fatalf("%d bytes received by %v into the trace, which carried only %d by then", got, at, capacity)
		}
	}
}

// TestTraceRTT checks the delay of a trace link: small pings over a trace
// with an opportunity every millisecond wait for the next opportunity, half
// a millisecond on average each way, on top of the two delays. As TestRTT,
// it judges the fastest tenth of the pings, within 1 ms + 2%.
func TestTraceRTT(t *testing.T) {
	exclusive(t)
	var b strings.Builder
	for i := 1; i <= 1000; i++ {
		b.WriteString(strconv.Itoa(i) + "\n")
	}
	tr, err := link.ParseTrace(strings.NewReader(b.String()), "1ms", 1000)
	if err != nil {
		t.Fatal(err)
	}
	cfg := link.TraceLink(tr, tr, 0, link.Queue{Packets: 100})
	cfg.Up.Delay, cfg.Down.Delay = 15*time.Millisecond, 25*time.Millisecond
	relay := echoRelay(t, cfg, 1)
	watch := probe.WatchCPU()
	res, err := probe.Ping(context.Background(), listenLoopback(t), relay.Addr(), probe.PingConfig{Count: 100, Interval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Received() != res.Sent {
		t.Fatalf("%d of %d pings came back over a trace link that is never full", res.Received(), res.Sent)
	}
	busy, figures := watch.Busy()
	want := cfg.RTT() + time.Millisecond
	p10 := res.Quantile(0.1)
	t.Logf("RTT p10 %v (median %v, p90 %v), configured delays %v plus 1 ms of waits: error %v; CPU: %s",
		p10, res.Quantile(0.5), res.Quantile(0.9), cfg.RTT(), p10-want, figures)
	if tol := time.Millisecond + want/50; p10-want < -tol || p10-want > tol {
		if busy {
			t.Skipf("SKIPPED: RTT p10 %v, want %v +- %v, on a busy machine (%s)", p10, want, tol, figures)
		}
		t.Errorf("RTT p10 %v, want %v +- %v", p10, want, tol)
	}
}

// TestTraceQueueDrops sends a burst into a trace link whose first
// opportunity comes after a second: the drop-tail queue keeps the first
// datagrams that fit its limit and drops the rest, and those it kept arrive
// once the opportunities come.
func TestTraceQueueDrops(t *testing.T) {
	lines := strings.Repeat("1000\n", 100) + "2000\n"
	tr, err := link.ParseTrace(strings.NewReader(lines), "late", 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		q    link.Queue
		kept int
	}{
		{link.Queue{Packets: 10}, 10},
		{link.Queue{Bytes: 5000}, 4}, // 1028-byte datagrams
		{link.Queue{Bytes: 5000, Packets: 3}, 3},
	} {
		t.Run(tc.q.String(), func(t *testing.T) {
			dst, got := sink(t)
			relay, err := link.NewRelay(context.Background(), "127.0.0.1:0", dst.LocalAddr().String(),
				link.TraceLink(tr, nil, 10*time.Millisecond, tc.q), 1)
			if err != nil {
				t.Fatal(err)
			}
			defer relay.Close()
			src := listenLoopback(t)
			for i := range 50 {
				if _, err := src.WriteTo(append([]byte{byte(i)}, make([]byte, 999)...), relay.Addr()); err != nil {
					t.Fatal(err)
				}
			}
			for i := range tc.kept {
				select {
				case b := <-got:
					if at := time.Since(relay.Start()); b[0] != byte(i) || at < time.Second+10*time.Millisecond {
						t.Errorf("datagram %d arrived as number %d at %v, want in order after 1.01 s", b[0], i, at)
					}
				case <-time.After(3 * time.Second):
					t.Fatalf("%d of %d kept datagrams arrived", i, tc.kept)
				}
			}
			st := relay.Stats().Up
			if st.Received != 50 || st.Dropped != uint64(50-tc.kept) {
				t.Errorf("received %d, dropped %d; want 50 and %d", st.Received, st.Dropped, 50-tc.kept)
			}
			select {
			case b := <-got:
				t.Errorf("datagram %d arrived beyond the queue's %d", b[0], tc.kept)
			case <-time.After(20 * time.Millisecond):
			}
		})
	}
}
