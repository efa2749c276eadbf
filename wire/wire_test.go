package wire

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
	"time"
)

func sampleHeader() Header {
	h := Header{Codec: 1, Tasks: AllTasks, Channels: 48, Height: 12, Width: 12, RequestID: 0x0102030405060708, DeadlineMS: 250}
	for i := range h.Bundle {
		h.Bundle[i] = byte(i * 7)
	}
	return h
}

func TestHeaderRoundTrip(t *testing.T) {
	h := sampleHeader()
	payload := []byte("some payload bytes")
	var buf bytes.Buffer
	if err := WriteRequest(&buf, h, payload); err != nil {
		t.Fatal(err)
	}
	if buf.Len() != HeaderSize+len(payload) {
		t.Fatalf("frame is %d bytes, want %d", buf.Len(), HeaderSize+len(payload))
	}
	got, p, err := ReadRequest(&buf, 0)
	if err != nil {
		t.Fatal(err)
	}
	h.PayloadLen, h.PayloadCRC = uint32(len(payload)), Checksum(payload)
	if got != h || !bytes.Equal(p, payload) {
		t.Fatalf("round trip: got %+v %q, want %+v %q", got, p, h, payload)
	}
}

func TestRequestErrors(t *testing.T) {
	good := func() []byte {
		var buf bytes.Buffer
		if err := WriteRequest(&buf, sampleHeader(), []byte("abcdef")); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	tests := []struct {
		name   string
		mutate func([]byte) []byte
		limit  uint32
		keepID bool // the request id survives the error
	}{
		{"short header", func(b []byte) []byte { return b[:HeaderSize-1] }, 0, false},
		{"bad magic", func(b []byte) []byte { b[0] = 'X'; return b }, 0, false},
		{"version 2", func(b []byte) []byte { b[2] = 2; return b }, 0, false},
		{"flags", func(b []byte) []byte { b[5] = 1; return b }, 0, true},
		{"no tasks", func(b []byte) []byte { b[4] = 0; return b }, 0, true},
		{"unknown task", func(b []byte) []byte { b[4] = 0x09; return b }, 0, true},
		{"empty shape", func(b []byte) []byte { b[6], b[7] = 0, 0; return b }, 0, true},
		{"payload cut", func(b []byte) []byte { return b[:len(b)-1] }, 0, true},
		{"payload flipped", func(b []byte) []byte { b[len(b)-1] ^= 0x40; return b }, 0, true},
		{"over server limit", func(b []byte) []byte { return b }, 3, true},
		{"over protocol limit", func(b []byte) []byte { b[24] = 0xff; return b }, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _, err := ReadRequest(bytes.NewReader(tt.mutate(good())), tt.limit)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
			if tt.keepID && h.RequestID != sampleHeader().RequestID {
				t.Errorf("request id %x lost", h.RequestID)
			}
		})
	}
}

func sampleReply() *Reply {
	return &Reply{
		Status:    StatusOK,
		RequestID: 42,
		Timings: []Timing{
			{"queue", 12 * time.Microsecond}, {"decode", 340 * time.Microsecond},
			{"head:classify", 2 * time.Millisecond}, {"post", 15 * time.Microsecond},
		},
		Results: []Result{
			{Task: Classify, Classes: []Class{{3, 0.9}, {1, 0.05}}},
			{Task: Detect, Boxes: []Box{{Class: 2, Score: 0.8, X0: 1, Y0: 2, X1: 30.5, Y1: 40}}},
			{Task: Segment, Mask: &Mask{Width: 3, Height: 2, Runs: []Run{{0, 4}, {2, 2}}}},
		},
	}
}

func TestReplyRoundTrip(t *testing.T) {
	for _, r := range []*Reply{
		sampleReply(),
		{Status: StatusOverloaded, RequestID: 7, Message: "queue full"},
		{Status: StatusOK, Results: []Result{{Task: Detect}}},
	} {
		var buf bytes.Buffer
		if err := WriteReply(&buf, r); err != nil {
			t.Fatal(err)
		}
		got, err := ReadReply(&buf)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, r) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, r)
		}
	}
}

func TestReplyRejects(t *testing.T) {
	tests := []struct {
		name string
		r    *Reply
	}{
		{"mask runs short", &Reply{Results: []Result{{Task: Segment, Mask: &Mask{Width: 2, Height: 2, Runs: []Run{{1, 3}}}}}}},
		{"mask missing", &Reply{Results: []Result{{Task: Segment}}}},
		{"task twice", &Reply{Results: []Result{{Task: Classify}, {Task: Classify}}}},
		{"bad status", &Reply{Status: 99}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := AppendReply(nil, tt.r); err == nil {
				t.Fatal("encoded an invalid reply")
			}
		})
	}
	b, err := AppendReply(nil, sampleReply())
	if err != nil {
		t.Fatal(err)
	}
	for cut := range len(b) {
		if _, err := ParseReply(b[:cut]); err == nil {
			t.Fatalf("parsed a reply cut at %d of %d bytes", cut, len(b))
		}
	}
	if _, err := ParseReply(append(b, 0)); err == nil {
		t.Fatal("parsed a reply with a trailing byte")
	}
}

func TestMaskEncoding(t *testing.T) {
	px := []uint8{0, 0, 0, 1, 1, 0, 2, 2, 2, 2, 2, 2}
	m, err := EncodeMask(px, 4, 3)
	if err != nil {
		t.Fatal(err)
	}
	if want := []Run{{0, 3}, {1, 2}, {0, 1}, {2, 6}}; !reflect.DeepEqual(m.Runs, want) {
		t.Fatalf("runs %v, want %v", m.Runs, want)
	}
	if got := m.Pixels(); !bytes.Equal(got, px) {
		t.Fatalf("pixels %v, want %v", got, px)
	}
	if _, err := EncodeMask(px, 5, 3); err == nil {
		t.Fatal("encoded a mask whose size does not match")
	}
}

func TestTasks(t *testing.T) {
	var s Tasks
	for _, name := range []string{"classify", "segment"} {
		task, err := ParseTask(name)
		if err != nil {
			t.Fatal(err)
		}
		s = s.With(task)
	}
	if !reflect.DeepEqual(s.List(), []Task{Classify, Segment}) || s.Has(Detect) {
		t.Fatalf("set %v", s.List())
	}
	if _, err := ParseTask("track"); err == nil {
		t.Fatal("parsed an unknown task")
	}
}

// FuzzParseHeader checks that any 64 bytes either parse into a header that
// encodes back to the same bytes, or are rejected; never a panic.
func FuzzParseHeader(f *testing.F) {
	f.Add(AppendHeader(nil, &Header{Codec: 1, Tasks: 1, Channels: 1, Height: 1, Width: 1}))
	h := sampleHeader()
	f.Add(AppendHeader(nil, &h))
	f.Add(make([]byte, HeaderSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b)
		if err != nil {
			return
		}
		if enc := AppendHeader(nil, &h); !bytes.Equal(enc, b[:HeaderSize]) {
			t.Fatalf("re-encoded header differs:\n%x\n%x", enc, b[:HeaderSize])
		}
	})
}

// FuzzReadRequest feeds arbitrary frames to the request reader.
func FuzzReadRequest(f *testing.F) {
	var buf bytes.Buffer
	_ = WriteRequest(&buf, sampleHeader(), []byte("payload"))
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		h, p, err := ReadRequest(bytes.NewReader(b), 1<<16)
		if err != nil {
			return
		}
		if int(h.PayloadLen) != len(p) || Checksum(p) != h.PayloadCRC {
			t.Fatalf("accepted a payload that does not match its header")
		}
	})
}

// FuzzParseReply checks that any bytes either parse into a reply that encodes
// back to the same bytes, or are rejected.
func FuzzParseReply(f *testing.F) {
	b, _ := AppendReply(nil, sampleReply())
	f.Add(b)
	b, _ = AppendReply(nil, &Reply{Status: StatusBadRequest, Message: "bad"})
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseReply(b)
		if err != nil {
			return
		}
		enc, err := AppendReply(nil, r)
		if err != nil {
			t.Fatalf("parsed reply does not encode: %v", err)
		}
		r2, err := ParseReply(enc)
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if enc2, _ := AppendReply(nil, r2); !bytes.Equal(enc, enc2) {
			t.Fatalf("re-encoded reply differs")
		}
	})
}

// stallReader returns its bytes, then err (as a stalled stream's read
// deadline would).
type stallReader struct {
	b   []byte
	err error
}

func (s *stallReader) Read(p []byte) (int, error) {
	if len(s.b) == 0 {
		return 0, s.err
	}
	n := copy(p, s.b)
	s.b = s.b[n:]
	return n, nil
}

// TestPayloadGrowsAsItArrives checks that a header's claim allocates
// nothing: a stream that claims 16 MiB and stalls after 100 bytes holds a
// buffer of the first chunk only, and that grow can refuse.
func TestPayloadGrowsAsItArrives(t *testing.T) {
	h := sampleHeader()
	h.PayloadLen = 16 << 20
	stalled := errors.New("stalled")
	buf, err := ReadPayload(&stallReader{b: make([]byte, 100), err: stalled}, &h, nil, nil)
	if !errors.Is(err, stalled) {
		t.Fatalf("err = %v, want the stall", err)
	}
	if len(buf) != 100 || cap(buf) > firstChunk {
		t.Fatalf("holds %d bytes in a buffer of %d, want 100 in at most %d", len(buf), cap(buf), firstChunk)
	}
	refuse := errors.New("budget")
	var asked []int
	grow := func(b []byte, n int) ([]byte, error) {
		asked = append(asked, n)
		if n > 2*firstChunk {
			return b, refuse
		}
		nb := make([]byte, len(b), n)
		copy(nb, b)
		return nb, nil
	}
	buf, err = ReadPayload(&stallReader{b: make([]byte, 1<<20), err: io.EOF}, &h, nil, grow)
	if !errors.Is(err, refuse) || len(buf) != 2*firstChunk {
		t.Fatalf("err %v with %d bytes, want the refusal after %d", err, len(buf), 2*firstChunk)
	}
	if want := []int{firstChunk, 2 * firstChunk, 4 * firstChunk}; !reflect.DeepEqual(asked, want) {
		t.Fatalf("grow asked for %v, want %v", asked, want)
	}
	payload := bytes.Repeat([]byte("x"), 3*firstChunk+5)
	h.PayloadLen, h.PayloadCRC = uint32(len(payload)), Checksum(payload)
	got, err := ReadPayload(bytes.NewReader(payload), &h, make([]byte, 0, 10), nil)
	if err != nil || !bytes.Equal(got, payload) || cap(got) != len(payload) {
		t.Fatalf("err %v, %d bytes in %d, want %d exactly", err, len(got), cap(got), len(payload))
	}
}

func TestRetryAfter(t *testing.T) {
	r := &Reply{Status: StatusOverloaded, Message: "queue full", Timings: []Timing{{Stage: StageRetryAfter, Duration: 40 * time.Millisecond}}}
	b, err := AppendReply(nil, r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseReply(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.RetryAfter() != 40*time.Millisecond {
		t.Fatalf("retry after %v, want 40ms", got.RetryAfter())
	}
	if (&Reply{}).RetryAfter() != 0 {
		t.Fatal("a reply without a hint has one")
	}
}

func TestTasksString(t *testing.T) {
	for _, c := range []struct {
		s    Tasks
		want string
	}{{AllTasks, "classify,detect,segment"}, {Tasks(0).With(Segment), "segment"}, {0, ""}, {0x09, "classify,bits(0x8)"}} {
		if got := c.s.String(); got != c.want {
			t.Errorf("%#x: %q, want %q", uint8(c.s), got, c.want)
		}
	}
}
