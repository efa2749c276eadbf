package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
)

// Status is the outcome of a request.
type Status uint8

// The statuses of a reply.
const (
	StatusOK               Status = 0
	StatusBadRequest       Status = 1 // malformed header, corrupted or undecodable payload
	StatusUnknownBundle    Status = 2 // the bundle hash names no bundle the cloud serves
	StatusOverloaded       Status = 3 // the queue is full; retry later
	StatusDeadlineExceeded Status = 4 // the request's deadline passed before it was done
	StatusInternal         Status = 5 // the cloud failed; not the request's fault
	numStatuses                   = 6
)

var statusNames = [numStatuses]string{"ok", "bad_request", "unknown_bundle", "overloaded", "deadline_exceeded", "internal"}

func (s Status) String() string {
	if s < numStatuses {
		return statusNames[s]
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// Limits of a reply; the parser rejects anything larger.
const (
	ReplyHeaderSize = 16       // magic, version, status, request id, body length
	MaxReplyBody    = 16 << 20 // bytes
	MaxMessage      = 1024     // bytes of the status message
	MaxTimings      = 64       // stage timings
	MaxStageName    = 64       // bytes of a stage name
	MaxClasses      = 1024     // top-k entries of one classification
	MaxBoxes        = 4096     // boxes of one detection
	MaxMaskPixels   = 1 << 24  // pixels of one mask
)

// StageRetryAfter is the timing entry by which an overloaded reply carries
// its retry-after hint: the "duration" is how long the cloud asks the edge
// to wait before it sends the request again. It travels in the timings list
// so that v1 peers that do not know it parse the reply as before.
const StageRetryAfter = "retry-after"

// RetryAfter returns the reply's retry-after hint, or 0 if it has none.
func (r *Reply) RetryAfter() time.Duration {
	for _, t := range r.Timings {
		if t.Stage == StageRetryAfter {
			return t.Duration
		}
	}
	return 0
}

// Timing is the time one stage took on the cloud.
type Timing struct {
	Stage    Stage // StageQueue, StageDecode, StageTrunk, HeadStage(task), StagePost
	Duration time.Duration
}

// Class is one entry of a classification's top-k: a label index and its
// probability.
type Class struct {
	Label uint32
	Score float32
}

// Box is one detection: class, score and corners in input-image pixels.
type Box struct {
	Class          uint32
	Score          float32
	X0, Y0, X1, Y1 float32
}

// Run is a run of equal class indices in a mask (row-major order).
type Run struct {
	Class uint8
	Len   uint32
}

// Mask is a segmentation mask, run-length encoded in row-major order.
type Mask struct {
	Width, Height int
	Runs          []Run
}

// Pixels expands the mask into one class index per pixel, row-major.
func (m *Mask) Pixels() []uint8 {
	out := make([]uint8, 0, m.Width*m.Height)
	for _, r := range m.Runs {
		for range r.Len {
			out = append(out, r.Class)
		}
	}
	return out
}

// EncodeMask run-length encodes a row-major mask of width*height class indices.
func EncodeMask(pixels []uint8, width, height int) (*Mask, error) {
	if width <= 0 || height <= 0 || width*height != len(pixels) || len(pixels) > MaxMaskPixels {
		return nil, fmt.Errorf("mask of %d pixels is not %dx%d (or over %d)", len(pixels), width, height, MaxMaskPixels)
	}
	m := &Mask{Width: width, Height: height}
	for i, c := range pixels {
		if i > 0 && c == pixels[i-1] {
			m.Runs[len(m.Runs)-1].Len++
			continue
		}
		m.Runs = append(m.Runs, Run{Class: c, Len: 1})
	}
	return m, nil
}

// Result is the outcome of one task. Exactly one of Classes, Boxes and Mask
// is meaningful, as Task says.
type Result struct {
	Task    Task
	Classes []Class // Classify: top-k, best first
	Boxes   []Box   // Detect: after decoding and NMS, best first
	Mask    *Mask   // Segment
}

// Reply is what the cloud answers to one request.
type Reply struct {
	Status    Status
	RequestID uint64
	Message   string   // detail for a status other than ok
	Timings   []Timing // cloud stages in the order they ran
	Results   []Result // one per requested task, when Status is ok
}

// Result returns the result of task t, or nil.
func (r *Reply) Result(t Task) *Result {
	for i := range r.Results {
		if r.Results[i].Task == t {
			return &r.Results[i]
		}
	}
	return nil
}

// AppendReply appends the encoding of r to dst. See docs/PROTOCOL.md.
func AppendReply(dst []byte, r *Reply) ([]byte, error) {
	if err := r.check(); err != nil {
		return dst, err
	}
	start := len(dst)
	dst = append(dst, replyMagic[0], replyMagic[1], Version, byte(r.Status))
	dst = binary.BigEndian.AppendUint64(dst, r.RequestID)
	dst = append(dst, 0, 0, 0, 0) // body length, filled in below
	body := len(dst)
	dst = appendString(dst, r.Message)
	dst = binary.AppendUvarint(dst, uint64(len(r.Timings)))
	for _, t := range r.Timings {
		dst = appendString(dst, string(t.Stage))
		dst = binary.AppendUvarint(dst, uint64(max(t.Duration, 0)/time.Microsecond))
	}
	dst = binary.AppendUvarint(dst, uint64(len(r.Results)))
	for _, res := range r.Results {
		dst = append(dst, byte(res.Task))
		switch res.Task {
		case Classify:
			dst = binary.AppendUvarint(dst, uint64(len(res.Classes)))
			for _, c := range res.Classes {
				dst = binary.AppendUvarint(dst, uint64(c.Label))
				dst = appendFloat(dst, c.Score)
			}
		case Detect:
			dst = binary.AppendUvarint(dst, uint64(len(res.Boxes)))
			for _, b := range res.Boxes {
				dst = binary.AppendUvarint(dst, uint64(b.Class))
				for _, f := range [...]float32{b.Score, b.X0, b.Y0, b.X1, b.Y1} {
					dst = appendFloat(dst, f)
				}
			}
		case Segment:
			m := res.Mask
			dst = binary.AppendUvarint(dst, uint64(m.Width))
			dst = binary.AppendUvarint(dst, uint64(m.Height))
			dst = binary.AppendUvarint(dst, uint64(len(m.Runs)))
			for _, run := range m.Runs {
				dst = append(dst, run.Class)
				dst = binary.AppendUvarint(dst, uint64(run.Len))
			}
		}
	}
	n := len(dst) - body
	if n > MaxReplyBody {
		return dst[:start], fmt.Errorf("reply body of %d bytes over %d", n, MaxReplyBody)
	}
	binary.BigEndian.PutUint32(dst[body-4:], uint32(n))
	return dst, nil
}

// check validates a reply before encoding, with the same limits as the parser.
func (r *Reply) check() error {
	switch {
	case r.Status >= numStatuses:
		return fmt.Errorf("status %d", r.Status)
	case len(r.Message) > MaxMessage:
		return fmt.Errorf("message of %d bytes over %d", len(r.Message), MaxMessage)
	case len(r.Timings) > MaxTimings:
		return fmt.Errorf("%d timings over %d", len(r.Timings), MaxTimings)
	case len(r.Results) > numTasks:
		return fmt.Errorf("%d results over %d", len(r.Results), numTasks)
	}
	for _, t := range r.Timings {
		if len(t.Stage) > MaxStageName {
			return fmt.Errorf("stage name %q over %d bytes", t.Stage, MaxStageName)
		}
	}
	var seen Tasks
	for _, res := range r.Results {
		if res.Task >= numTasks || seen.Has(res.Task) {
			return fmt.Errorf("result for task %v repeated or unknown", res.Task)
		}
		seen = seen.With(res.Task)
		switch {
		case len(res.Classes) > MaxClasses:
			return fmt.Errorf("%d classes over %d", len(res.Classes), MaxClasses)
		case len(res.Boxes) > MaxBoxes:
			return fmt.Errorf("%d boxes over %d", len(res.Boxes), MaxBoxes)
		case res.Task == Segment:
			if res.Mask == nil {
				return errors.New("segment result without a mask")
			}
			if err := res.Mask.check(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *Mask) check() error {
	if m.Width <= 0 || m.Height <= 0 || m.Width*m.Height > MaxMaskPixels {
		return fmt.Errorf("mask %dx%d empty or over %d pixels", m.Width, m.Height, MaxMaskPixels)
	}
	total := 0
	for _, r := range m.Runs {
		if r.Len == 0 {
			return errors.New("mask run of length 0")
		}
		total += int(r.Len)
		if total > m.Width*m.Height {
			break
		}
	}
	if total != m.Width*m.Height {
		return fmt.Errorf("mask runs cover %d pixels, want %dx%d", total, m.Width, m.Height)
	}
	return nil
}

func appendString(dst []byte, s string) []byte {
	return append(binary.AppendUvarint(dst, uint64(len(s))), s...)
}

func appendFloat(dst []byte, f float32) []byte {
	return binary.BigEndian.AppendUint32(dst, math.Float32bits(f))
}

// ParseReply decodes one reply from b, which must hold exactly one reply.
func ParseReply(b []byte) (*Reply, error) {
	if len(b) < ReplyHeaderSize {
		return nil, malformed("reply of %d bytes, shorter than its %d-byte header", len(b), ReplyHeaderSize)
	}
	n, err := parseReplyHeader(b)
	if err != nil {
		return nil, err
	}
	if len(b)-ReplyHeaderSize != n {
		return nil, malformed("reply body is %d bytes, header says %d", len(b)-ReplyHeaderSize, n)
	}
	r := &Reply{Status: Status(b[3]), RequestID: binary.BigEndian.Uint64(b[4:])}
	if err := r.parseBody(b[ReplyHeaderSize:]); err != nil {
		return nil, err
	}
	return r, nil
}

func parseReplyHeader(b []byte) (int, error) {
	if b[0] != replyMagic[0] || b[1] != replyMagic[1] {
		return 0, malformed("bad reply magic %#x %#x", b[0], b[1])
	}
	if b[2] != Version {
		return 0, fmt.Errorf("%w %d (this side speaks %d)", ErrVersion, b[2], Version)
	}
	if b[3] >= numStatuses {
		return 0, malformed("status %d", b[3])
	}
	n := binary.BigEndian.Uint32(b[12:])
	if n > MaxReplyBody {
		return 0, malformed("reply body of %d bytes over %d", n, MaxReplyBody)
	}
	return int(n), nil
}

// ReadReply reads one reply from r.
func ReadReply(r io.Reader) (*Reply, error) {
	var hb [ReplyHeaderSize]byte
	if _, err := io.ReadFull(r, hb[:]); err != nil {
		return nil, fmt.Errorf("read reply header: %w", err)
	}
	n, err := parseReplyHeader(hb[:])
	if err != nil {
		return nil, err
	}
	buf := make([]byte, ReplyHeaderSize+n)
	copy(buf, hb[:])
	if _, err := io.ReadFull(r, buf[ReplyHeaderSize:]); err != nil {
		return nil, fmt.Errorf("read reply body: %w", err)
	}
	return ParseReply(buf)
}

// WriteReply encodes r and writes it to w.
func WriteReply(w io.Writer, r *Reply) error {
	b, err := AppendReply(nil, r)
	if err != nil {
		return fmt.Errorf("encode reply: %w", err)
	}
	_, err = w.Write(b)
	return err
}

// reader walks a reply body; the first error sticks.
type reader struct {
	b   []byte
	err error
}

func (d *reader) fail(format string, args ...any) {
	if d.err == nil {
		d.err = malformed(format, args...)
	}
}

func (d *reader) uvarint(limit uint64, what string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad varint for %s", what)
		return 0
	}
	if v > limit {
		d.fail("%s %d over %d", what, v, limit)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *reader) byte(what string) byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 1 {
		d.fail("body ends before %s", what)
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *reader) float(what string) float32 {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 4 {
		d.fail("body ends before %s", what)
		return 0
	}
	v := math.Float32frombits(binary.BigEndian.Uint32(d.b))
	d.b = d.b[4:]
	return v
}

func (d *reader) string(limit int, what string) string {
	n := d.uvarint(uint64(limit), what+" length")
	if d.err != nil {
		return ""
	}
	if uint64(len(d.b)) < n {
		d.fail("body ends inside %s", what)
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// count reads an item count and checks that the remaining body can hold that
// many items of at least minSize bytes, so nothing is allocated for a count
// the body cannot back.
func (d *reader) count(limit, minSize int, what string) int {
	n := d.uvarint(uint64(limit), what)
	if d.err == nil && n*uint64(minSize) > uint64(len(d.b)) {
		d.fail("%d %s cannot fit in %d bytes", n, what, len(d.b))
		return 0
	}
	return int(n)
}

func (r *Reply) parseBody(b []byte) error {
	d := &reader{b: b}
	r.Message = d.string(MaxMessage, "message")
	nt := d.count(MaxTimings, 2, "timings")
	for range nt {
		name := d.string(MaxStageName, "stage name")
		us := d.uvarint(math.MaxInt64/uint64(time.Microsecond), "stage duration")
		if d.err != nil {
			break
		}
		r.Timings = append(r.Timings, Timing{Stage: Stage(name), Duration: time.Duration(us) * time.Microsecond})
	}
	nr := d.count(numTasks, 2, "results")
	var seen Tasks
	for range nr {
		if d.err != nil {
			break
		}
		t := Task(d.byte("task"))
		if d.err == nil && (t >= numTasks || seen.Has(t)) {
			d.fail("result for task %d repeated or unknown", t)
		}
		seen = seen.With(t)
		res := Result{Task: t}
		switch t {
		case Classify:
			n := d.count(MaxClasses, 5, "classes")
			for range n {
				label := d.uvarint(math.MaxUint32, "label")
				res.Classes = append(res.Classes, Class{Label: uint32(label), Score: d.float("score")})
			}
		case Detect:
			n := d.count(MaxBoxes, 21, "boxes")
			for range n {
				var bx Box
				bx.Class = uint32(d.uvarint(math.MaxUint32, "box class"))
				bx.Score, bx.X0, bx.Y0, bx.X1, bx.Y1 = d.float("score"), d.float("x0"), d.float("y0"), d.float("x1"), d.float("y1")
				res.Boxes = append(res.Boxes, bx)
			}
		case Segment:
			w := d.uvarint(MaxMaskPixels, "mask width")
			h := d.uvarint(MaxMaskPixels, "mask height")
			if d.err == nil && (w == 0 || h == 0 || w*h > MaxMaskPixels) {
				d.fail("mask %dx%d empty or over %d pixels", w, h, MaxMaskPixels)
			}
			m := &Mask{Width: int(w), Height: int(h)}
			n := d.count(MaxMaskPixels, 2, "mask runs")
			for range n {
				c := d.byte("run class")
				l := d.uvarint(MaxMaskPixels, "run length")
				m.Runs = append(m.Runs, Run{Class: c, Len: uint32(l)})
			}
			if d.err == nil {
				if err := m.check(); err != nil {
					d.fail("%v", err)
				}
			}
			res.Mask = m
		}
		if d.err == nil {
			r.Results = append(r.Results, res)
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d bytes after the last result", len(d.b))
	}
	return d.err
}
