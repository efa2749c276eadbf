package link

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// OpportunityBytes is the capacity of one line of a trace: one delivery
// opportunity for a 1500-byte IP packet, mahimahi's unit. The bytes count as
// the rate limit counts them, IP and UDP headers included.
const OpportunityBytes = 1500

// DefaultMaxOpportunities is the most lines LoadTrace reads: 4 Mi lines hold
// 6.3 GB of capacity, 930 s at 54 Mbit/s; a trace that long keeps at most
// 64 MiB (see ParseTrace).
const DefaultMaxOpportunities = 1 << 22

// MaxTracePeriod bounds the last timestamp of a trace: 30 days.
const MaxTracePeriod = 30 * 24 * time.Hour

// maxTraceLine is the longest line ParseTrace reads, in bytes; a timestamp
// up to MaxTracePeriod has 10 digits.
const maxTraceLine = 32

// Trace is a link capacity schedule in mahimahi's mm-link format: each line
// of the file is a time in milliseconds from the start of the trace at
// which the link may deliver OpportunityBytes; several opportunities in one
// millisecond repeat the timestamp. After its last line the trace starts
// again, shifted by its last timestamp (the period). A Trace is immutable
// and safe for concurrent use.
type Trace struct {
	name string
	// The distinct timestamps in milliseconds, increasing, and cum[i], the
	// number of opportunities at ms[0] through ms[i].
	ms, cum []int64
	period  time.Duration
}

// ErrTrace is wrapped by every error of ParseTrace and LoadTrace about the
// contents of a trace (not about reading it).
var ErrTrace = errors.New("bad link trace")

// LoadTrace reads a trace file of at most DefaultMaxOpportunities lines.
// Its name is the file's base name.
func LoadTrace(path string) (*Trace, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("link trace: %w", err)
	}
	defer f.Close()
	return ParseTrace(f, filepath.Base(path), DefaultMaxOpportunities)
}

// ParseTrace reads a trace of at most maxOpportunities lines (one per
// opportunity) from r and calls it name. Every line is a decimal count of
// milliseconds, not below the line before it and at most MaxTracePeriod; a
// line may end in "\r\n". The last timestamp must be above zero (a trace
// must last). Errors name the line. The memory it takes is at most 16 bytes
// per line, and never more than maxOpportunities allow, whatever the input.
func ParseTrace(r io.Reader, name string, maxOpportunities int) (*Trace, error) {
	if maxOpportunities <= 0 {
		return nil, fmt.Errorf("link trace %s: limit of %d opportunities: must be positive", name, maxOpportunities)
	}
	t := &Trace{name: name}
	br := bufio.NewReader(r)
	var line [maxTraceLine]byte
	var n int64 // opportunities so far, and the number of the line being read
	for {
		lineNo := n + 1
		text, err := readTraceLine(br, line[:])
		if errors.Is(err, io.EOF) {
			break
		}
		if errors.Is(err, errLineTooLong) {
			return nil, fmt.Errorf("%w %s: line %d: longer than %d bytes", ErrTrace, name, lineNo, maxTraceLine)
		}
		if err != nil {
			return nil, fmt.Errorf("link trace %s: line %d: %w", name, lineNo, err)
		}
		if n >= int64(maxOpportunities) {
			return nil, fmt.Errorf("%w %s: more than %d lines (the limit)", ErrTrace, name, maxOpportunities)
		}
		ms, err := parseMillis(text)
		if err != nil {
			return nil, fmt.Errorf("%w %s: line %d: %v", ErrTrace, name, lineNo, err)
		}
		switch last := len(t.ms) - 1; {
		case last >= 0 && ms < t.ms[last]:
			return nil, fmt.Errorf("%w %s: line %d: %d ms is before the line above (%d ms); timestamps must not decrease",
				ErrTrace, name, lineNo, ms, t.ms[last])
		case last >= 0 && ms == t.ms[last]:
			t.cum[last]++
		default:
			t.ms = append(t.ms, ms)
			t.cum = append(t.cum, n+1)
		}
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("%w %s: no timestamps", ErrTrace, name)
	}
	last := t.ms[len(t.ms)-1]
	if last == 0 {
		return nil, fmt.Errorf("%w %s: every timestamp is 0; the last one is the trace's length and must be above 0", ErrTrace, name)
	}
	t.period = time.Duration(last) * time.Millisecond
	// Give back what append over-allocated.
	t.ms, t.cum = append([]int64(nil), t.ms...), append([]int64(nil), t.cum...)
	return t, nil
}

var errLineTooLong = errors.New("line too long")

// readTraceLine reads one line into buf without its "\n" or "\r\n". It
// returns io.EOF at the end of the input (a last line without "\n" is still
// a line) and errLineTooLong for a line that does not fit buf.
func readTraceLine(br *bufio.Reader, buf []byte) ([]byte, error) {
	n := 0
	for {
		c, err := br.ReadByte()
		if errors.Is(err, io.EOF) {
			if n == 0 {
				return nil, io.EOF
			}
			if buf[n-1] == '\r' {
				n--
			}
			return buf[:n], nil
		}
		if err != nil {
			return nil, err
		}
		if c == '\n' {
			if n > 0 && buf[n-1] == '\r' {
				n--
			}
			return buf[:n], nil
		}
		if n == len(buf) {
			return nil, errLineTooLong
		}
		buf[n] = c
		n++
	}
}

// parseMillis reads a line's timestamp: decimal digits only.
func parseMillis(text []byte) (int64, error) {
	if len(text) == 0 {
		return 0, errors.New("empty line")
	}
	limit := int64(MaxTracePeriod / time.Millisecond)
	var v int64
	for _, c := range text {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%q is not a whole number of milliseconds", text)
		}
		v = v*10 + int64(c-'0')
		if v > limit {
			return 0, fmt.Errorf("%s ms is beyond the longest trace (%v)", text, MaxTracePeriod)
		}
	}
	return v, nil
}

// Name is the trace's name (for a file, its base name).
func (t *Trace) Name() string { return t.name }

// Period is the trace's length, its last timestamp: it repeats after that.
func (t *Trace) Period() time.Duration { return t.period }

// Opportunities is the number of delivery opportunities in one period (the
// file's lines).
func (t *Trace) Opportunities() int64 { return t.cum[len(t.cum)-1] }

// MeanBps is the trace's mean capacity in bits per second, headers
// included.
func (t *Trace) MeanBps() float64 {
	return float64(t.Opportunities()) * OpportunityBytes * 8 / t.period.Seconds()
}

// String describes the trace: its name, length and mean capacity.
func (t *Trace) String() string {
	return fmt.Sprintf("%s (%v, %.3g Mbit/s)", t.name, t.period, t.MeanBps()/1e6)
}

// CapacityBetween is the capacity in bytes of the opportunities at times in
// [from, to), the trace starting at time 0 and repeating.
func (t *Trace) CapacityBetween(from, to time.Duration) int64 {
	if to <= from {
		return 0
	}
	return satMul(t.countBefore(to)-t.countBefore(from), OpportunityBytes)
}

// MaxCapacityWindows bounds the windows that Capacity returns at once.
const MaxCapacityWindows = 1 << 24

// Capacity is the trace's capacity over time, for plots and checks: element
// k is the bytes it can deliver in [k*window, (k+1)*window), for the windows
// that start before duration (at most MaxCapacityWindows).
func (t *Trace) Capacity(window, duration time.Duration) ([]int64, error) {
	if window <= 0 || duration <= 0 {
		return nil, fmt.Errorf("link trace %s: capacity over %v in windows of %v: both must be positive", t.name, duration, window)
	}
	n := (duration-1)/window + 1
	if n > MaxCapacityWindows {
		return nil, fmt.Errorf("link trace %s: capacity over %v in windows of %v: more than %d windows", t.name, duration, window, MaxCapacityWindows)
	}
	out := make([]int64, n)
	prev := int64(0)
	for k := range out {
		c := t.countBefore(satMul(time.Duration(k+1), int64(window)))
		out[k] = satMul(c-prev, OpportunityBytes)
		prev = c
	}
	return out, nil
}

// countBefore is the number of opportunities at times before at, counted
// from time 0 over the repetitions of the trace. It saturates instead of
// overflowing.
func (t *Trace) countBefore(at time.Duration) int64 {
	if at <= 0 {
		return 0
	}
	per := t.Opportunities()
	q := int64(at / t.period) // whole periods before at
	var n int64
	// Repetitions 0 to q-2 end before at; q-1 may end exactly at it (its
	// last timestamp is q*period); q is under way.
	if q >= 2 {
		n = satMul(q-1, per)
	}
	for c := max(0, q-1); c <= q; c++ {
		n = satAdd64(n, t.inPeriodBefore(at-time.Duration(c)*t.period))
	}
	return n
}

// inPeriodBefore is the number of opportunities of one period at offsets
// before x.
func (t *Trace) inPeriodBefore(x time.Duration) int64 {
	// Timestamps are whole milliseconds: ms < x  <=>  ms < ceil(x / 1 ms).
	limit := int64((x + time.Millisecond - 1) / time.Millisecond)
	i := sort.Search(len(t.ms), func(i int) bool { return t.ms[i] >= limit })
	if i == 0 {
		return 0
	}
	return t.cum[i-1]
}

// at is the time of opportunity j (from 0), counted from time 0 over the
// repetitions of the trace. It saturates instead of overflowing.
func (t *Trace) at(j int64) time.Duration {
	per := t.Opportunities()
	c, i := j/per, j%per
	k := sort.Search(len(t.cum), func(k int) bool { return t.cum[k] > i })
	return satAdd(satMul(time.Duration(c), int64(t.period)), time.Duration(t.ms[k])*time.Millisecond)
}

// satMul is a*b for a, b >= 0, or the largest value where that overflows.
func satMul[T ~int64](a T, b int64) T {
	if b != 0 && a > T(math.MaxInt64/b) {
		return T(math.MaxInt64)
	}
	return a * T(b)
}

// satAdd is a+b for b >= 0, or the largest duration where that overflows.
func satAdd(a, b time.Duration) time.Duration {
	return time.Duration(satAdd64(int64(a), int64(b)))
}

func satAdd64(a, b int64) int64 {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}
