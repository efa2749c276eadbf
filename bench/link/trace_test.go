package link

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const ms = time.Millisecond

func mustTrace(t testing.TB, lines ...int64) *Trace {
	t.Helper()
	tr, err := ParseTrace(strings.NewReader(traceText(lines)), "test", DefaultMaxOpportunities)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func traceText(lines []int64) string {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(strconv.FormatInt(l, 10))
		b.WriteByte('\n')
	}
	return b.String()
}

func TestParseTrace(t *testing.T) {
	tests := []struct {
		name, in string
		opps     int64
		period   time.Duration
		ms, cum  []int64
	}{
		{"plain", "0\n5\n5\n10\n", 4, 10 * ms, []int64{0, 5, 10}, []int64{1, 3, 4}},
		{"no final newline", "3\n3\n7", 3, 7 * ms, []int64{3, 7}, []int64{2, 3}},
		{"CRLF", "1\r\n2\r\n2\r", 3, 2 * ms, []int64{1, 2}, []int64{1, 3}},
		{"leading zeros", "007\n0010\n", 2, 10 * ms, []int64{7, 10}, []int64{1, 2}},
		{"one line", "1\n", 1, ms, []int64{1}, []int64{1}},
		{"longest", "2592000000\n", 1, MaxTracePeriod, []int64{2592000000}, []int64{1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := ParseTrace(strings.NewReader(tc.in), "x", 100)
			if err != nil {
				t.Fatal(err)
			}
			if tr.Opportunities() != tc.opps || tr.Period() != tc.period || !slices.Equal(tr.ms, tc.ms) || !slices.Equal(tr.cum, tc.cum) {
				t.Errorf("got %d opportunities over %v, ms %v cum %v; want %d over %v, ms %v cum %v",
					tr.Opportunities(), tr.Period(), tr.ms, tr.cum, tc.opps, tc.period, tc.ms, tc.cum)
			}
		})
	}
}

func TestParseTraceErrors(t *testing.T) {
	tests := []struct {
		name, in string
		limit    int
		want     string // in the message
	}{
		{"empty", "", 10, "no timestamps"},
		{"empty line", "\n", 10, "line 1: empty line"},
		{"blank line inside", "5\n\n7\n", 10, "line 2: empty line"},
		{"decreasing", "1\n5\n3\n", 10, "line 3: 3 ms is before the line above (5 ms)"},
		{"zero length", "0\n0\n", 10, "must be above 0"},
		{"word", "1\nabc\n", 10, `line 2: "abc" is not a whole number`},
		{"negative", "-1\n", 10, "line 1:"},
		{"plus", "+5\n", 10, "line 1:"},
		{"space", "5 \n", 10, "line 1:"},
		{"float", "1e3\n", 10, "line 1:"},
		{"bare CR", "1\r2\n", 10, "line 1:"},
		{"NUL", "1\x00\n", 10, "line 1:"},
		{"too long", "1\n" + strings.Repeat("0", 40) + "1\n", 10, "line 2: longer than 32 bytes"},
		{"beyond 30 days", "2592000001\n", 10, "line 1: 2592000001 ms is beyond"},
		{"huge", "99999999999999999999999999\n", 10, "line 1:"},
		{"over the limit", "1\n2\n3\n4\n", 3, "more than 3 lines"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := ParseTrace(strings.NewReader(tc.in), "f.up", tc.limit)
			if err == nil {
				t.Fatalf("accepted, %v", tr)
			}
			if !errors.Is(err, ErrTrace) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "f.up") {
				t.Errorf("error %q: want ErrTrace, the name and %q", err, tc.want)
			}
		})
	}
	if _, err := ParseTrace(strings.NewReader("1\n"), "x", 0); err == nil {
		t.Error("a limit of 0 opportunities accepted")
	}
	if _, err := LoadTrace(filepath.Join(t.TempDir(), "missing")); err == nil || errors.Is(err, ErrTrace) {
		t.Errorf("missing file: %v, want an error that is not ErrTrace", err)
	}
}

// TestParseTraceBoundedRead checks that the parser stops at the limit
// instead of reading an endless input.
func TestParseTraceBoundedRead(t *testing.T) {
	r := &endless{line: []byte("7\n")}
	_, err := ParseTrace(r, "endless", 1000)
	if err == nil || !strings.Contains(err.Error(), "more than 1000 lines") {
		t.Fatalf("endless input: %v", err)
	}
	if r.read > 1<<16 {
		t.Errorf("read %d bytes for a limit of 1000 lines", r.read)
	}
	r = &endless{line: []byte("7")} // one endless line
	if _, err := ParseTrace(r, "endless", 1000); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Fatalf("endless line: %v", err)
	}
}

type endless struct {
	line []byte
	read int
}

func (e *endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = e.line[(e.read+i)%len(e.line)]
	}
	e.read += len(p)
	return len(p), nil
}

// expand lists the opportunity times of a trace given by its lines over
// reps repetitions, the way mm-link walks them: repetition c is shifted by
// c times the last line.
func expand(lines []int64, reps int) []time.Duration {
	var out []time.Duration
	period := lines[len(lines)-1]
	for c := range int64(reps) {
		for _, l := range lines {
			out = append(out, time.Duration(c*period+l)*ms)
		}
	}
	return out
}

// randomLines makes a trace of n lines: bursts of opportunities in one
// millisecond, gaps, and now and then an outage.
func randomLines(rng *rand.Rand, n int) []int64 {
	lines := make([]int64, 0, n)
	t := int64(rng.IntN(3))
	for len(lines) < n {
		for range 1 + rng.IntN(4) {
			lines = append(lines, t)
		}
		gap := int64(rng.IntN(6))
		if rng.IntN(50) == 0 {
			gap += 200 + int64(rng.IntN(500))
		}
		t += gap
	}
	lines = lines[:n]
	if lines[n-1] == 0 {
		lines[n-1] = 1
	}
	return lines
}

func TestTraceTimes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	cases := [][]int64{
		{1}, {0, 1}, {5, 5}, {0, 0, 3, 3}, {10, 10, 10}, {0, 2, 2, 2, 9},
		randomLines(rng, 50), randomLines(rng, 500),
	}
	for i, lines := range cases {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			tr := mustTrace(t, lines...)
			const reps = 4
			times := expand(lines, reps)
			for j, want := range times {
				if got := tr.at(int64(j)); got != want {
					t.Fatalf("opportunity %d at %v, want %v", j, got, want)
				}
			}
			// countBefore against a plain count, at and around every
			// opportunity and at random times.
			probes := []time.Duration{0, 1, -ms}
			for _, x := range times {
				probes = append(probes, x-1, x, x+1)
			}
			for range 200 {
				probes = append(probes, time.Duration(rng.Int64N(int64(times[len(times)-1]))))
			}
			for _, x := range probes {
				if x > times[len(times)-1] {
					continue // the plain count ends there
				}
				want := int64(0)
				for _, o := range times {
					if o < x {
						want++
					}
				}
				if got := tr.countBefore(x); got != want {
					t.Fatalf("countBefore(%v) = %d, want %d", x, got, want)
				}
			}
		})
	}
}

func TestTraceCapacityCounts(t *testing.T) {
	// 3 opportunities at 0, 1 each at 10 and 20 ms: period 20 ms, and the
	// repetition's 0 falls on the 20 of the one before.
	tr := mustTrace(t, 0, 0, 0, 10, 20)
	if got, want := tr.MeanBps(), 5*1500*8/0.020; got != want {
		t.Errorf("mean %v bit/s, want %v", got, want)
	}
	tests := []struct {
		from, to time.Duration
		opps     int64
	}{
		{0, 1, 3}, {0, 10 * ms, 3}, {0, 10*ms + 1, 4}, {0, 20 * ms, 4}, {0, 20*ms + 1, 8},
		{20 * ms, 21 * ms, 4}, {1, 40 * ms, 6}, {40 * ms, 40 * ms, 0}, {50 * ms, 40 * ms, 0},
		{0, 2 * time.Second, 4 + 99*5}, {-time.Second, 1, 3},
	}
	for _, tc := range tests {
		if got := tr.CapacityBetween(tc.from, tc.to); got != tc.opps*OpportunityBytes {
			t.Errorf("CapacityBetween(%v, %v) = %d, want %d", tc.from, tc.to, got, tc.opps*OpportunityBytes)
		}
	}
	got, err := tr.Capacity(10*ms, 45*ms)
	if want := []int64{4500, 1500, 6000, 1500, 6000}; err != nil || !slices.Equal(got, want) {
		t.Errorf("Capacity(10ms, 45ms) = %v, %v; want %v", got, err, want)
	}
	for _, c := range [][2]time.Duration{{0, time.Second}, {ms, 0}, {1, time.Hour}} {
		if _, err := tr.Capacity(c[0], c[1]); err == nil {
			t.Errorf("Capacity(%v, %v): no error", c[0], c[1])
		}
	}
	// Far out the counts saturate instead of wrapping around.
	if c := tr.CapacityBetween(0, 1<<62); c <= 0 {
		t.Errorf("capacity over 146 years: %d", c)
	}
}

// FuzzParseTrace checks that ParseTrace never panics or takes more than its
// limit, and that what it accepts is a consistent schedule: the lines read
// back, counts and times agree.
func FuzzParseTrace(f *testing.F) {
	for _, s := range []string{"0\n5\n5\n10\n", "1", "3\r\n3\r\n7", "", "\n", "5\n3\n", "0\n0\n",
		"2592000000\n", "1\n1\n1\n1\n1\n1\n1\n1\n1\n1\n1\n1\n", "12345678901234567890123456789012345\n"} {
		f.Add([]byte(s))
	}
	const limit = 64
	f.Fuzz(func(t *testing.T, in []byte) {
		tr, err := ParseTrace(bytes.NewReader(in), "fuzz", limit)
		if err != nil {
			return
		}
		n := tr.Opportunities()
		if n < 1 || n > limit || tr.Period() <= 0 || tr.Period() > MaxTracePeriod {
			t.Fatalf("accepted %d opportunities over %v", n, tr.Period())
		}
		// The lines it accepted read back as the same trace.
		var lines []int64
		for i := range n {
			lines = append(lines, int64(tr.at(i)/ms))
		}
		back, err := ParseTrace(strings.NewReader(traceText(lines)), "fuzz", limit)
		if err != nil || !slices.Equal(back.ms, tr.ms) || !slices.Equal(back.cum, tr.cum) {
			t.Fatalf("lines %v read back as %v, %v", lines, back, err)
		}
		for j := range 3 * n {
			at := tr.at(j)
			if before := tr.countBefore(at); before > j || tr.countBefore(at+1) <= j {
				t.Fatalf("opportunity %d at %v, but %d before it and %d up to it", j, at, before, tr.countBefore(at+1))
			}
		}
		if c := tr.CapacityBetween(0, 3*tr.Period()+1); c != 3*n*OpportunityBytes+tr.CapacityBetween(0, 1) {
			t.Fatalf("capacity over 3 periods %d, want %d", c, 3*n*OpportunityBytes)
		}
	})
}

// shippedTraces returns the paths of the mahimahi traces in the folder that
// $SPLITSTREAM_TRACES names, or skips the test.
func shippedTraces(t *testing.T) []string {
	dir := os.Getenv("SPLITSTREAM_TRACES")
	if dir == "" {
		t.Skip("SKIPPED: set SPLITSTREAM_TRACES to a folder of mahimahi traces (*.up, *.down) to run this test")
	}
	var paths []string
	for _, pat := range []string{"*.up", "*.down"} {
		m, err := filepath.Glob(filepath.Join(dir, pat))
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, m...)
	}
	if len(paths) == 0 {
		t.Fatalf("no *.up or *.down files in $SPLITSTREAM_TRACES=%s", dir)
	}
	return paths
}

// TestLoadShippedTraces reads the recorded traces and checks each against a
// plain count of its lines.
func TestLoadShippedTraces(t *testing.T) {
	for _, path := range shippedTraces(t) {
		tr, err := LoadTrace(path)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Fields(string(b))
		last, _ := strconv.ParseInt(lines[len(lines)-1], 10, 64)
		if tr.Opportunities() != int64(len(lines)) || tr.Period() != time.Duration(last)*ms {
			t.Errorf("%s: %d opportunities over %v, the file has %d lines ending at %d ms", path, tr.Opportunities(), tr.Period(), len(lines), last)
		}
		t.Logf("%v: %d opportunities, %d distinct milliseconds", tr, tr.Opportunities(), len(tr.ms))
	}
}

func TestTraceLink(t *testing.T) {
	up, down := mustTrace(t, 0, 5, 10), mustTrace(t, 3)
	q, err := ParseQueue("50p")
	if err != nil {
		t.Fatal(err)
	}
	c := TraceLink(up, down, 25*ms, q)
	want := Config{
		Up:   Direction{Trace: up, Delay: 25 * ms, QueuePackets: 50},
		Down: Direction{Trace: down, Delay: 25 * ms, QueuePackets: 50},
	}
	if c != want || c.Validate() != nil || c.RTT() != 50*ms {
		t.Errorf("TraceLink = %+v (%v), want %+v", c, c.Validate(), want)
	}
	if s := c.String(); s != "up.trace=test,up.delay=25ms,up.queue=50p,down.trace=test,down.delay=25ms,down.queue=50p" {
		t.Errorf("String %q", s)
	}
	bad := c
	bad.Up.RateBps = 1e6
	if bad.Validate() == nil {
		t.Error("a trace with a rate validated")
	}
	bad = c
	bad.Down.BurstBytes = 3000
	if bad.Validate() == nil {
		t.Error("a trace with a burst validated")
	}
	if _, err := Parse("up.trace=f.up"); err == nil || !strings.Contains(err.Error(), "LoadTrace") {
		t.Errorf("Parse of a trace setting: %v, want an error that points to LoadTrace", err)
	}
}

func TestParseQueue(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Queue
	}{{"0", Queue{}}, {"64KiB", Queue{Bytes: 64 << 10}}, {"100000", Queue{Bytes: 100000}}, {"50p", Queue{Packets: 50}}} {
		q, err := ParseQueue(tc.in)
		if err != nil || q != tc.want {
			t.Errorf("ParseQueue(%q) = %+v, %v; want %+v", tc.in, q, err, tc.want)
		}
		if back, err := ParseQueue(q.String()); err != nil || back != q {
			t.Errorf("%+v: String %q reads back as %+v, %v", q, q.String(), back, err)
		}
	}
	for _, in := range []string{"", "-1", "p", "1.5", "10q"} {
		if q, err := ParseQueue(in); err == nil {
			t.Errorf("ParseQueue(%q) = %+v, want an error", in, q)
		}
	}
}
