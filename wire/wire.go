// Package wire is splitstream's protocol v1: the request header that opens
// every request stream, the payload that follows it, and the reply the cloud
// writes back. One parser serves both sides; it is defensive: every count and
// length is bounded before anything is allocated, and any inconsistency is an
// error, never a panic. docs/PROTOCOL.md is the specification.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strings"
)

// Version is the protocol version this package speaks.
const Version = 1

// HeaderSize is the fixed size of a request header in bytes.
const HeaderSize = 64

// HashSize is the size of a bundle hash (the raw SHA-256 digest).
const HashSize = 32

// MaxPayload bounds the payload of one request (64 MiB). A server may set a
// lower limit of its own.
const MaxPayload = 64 << 20

// requestMagic opens every request header ("SQ"); replyMagic every reply ("SR").
var (
	requestMagic = [2]byte{'S', 'Q'}
	replyMagic   = [2]byte{'S', 'R'}
)

// castagnoli is the CRC-32C table used for the payload checksum.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Checksum returns the CRC-32C of a payload, as carried in the header.
func Checksum(payload []byte) uint32 { return crc32.Checksum(payload, castagnoli) }

// Task is one of the tasks a request may ask for; requests carry a set of them
// as a bit mask.
type Task uint8

// The tasks. Their values are bit positions in the header's task mask.
const (
	Classify Task = 0
	Detect   Task = 1
	Segment  Task = 2
	numTasks      = 3
)

var taskNames = [numTasks]string{"classify", "detect", "segment"}

func (t Task) String() string {
	if t < numTasks {
		return taskNames[t]
	}
	return fmt.Sprintf("task(%d)", uint8(t))
}

// ParseTask returns the task with the given name.
func ParseTask(name string) (Task, error) {
	for i, n := range taskNames {
		if n == name {
			return Task(i), nil
		}
	}
	return 0, fmt.Errorf("unknown task %q (want classify, detect or segment)", name)
}

// GoingAway is the QUIC application error code with which a server that
// shuts down (a replica drained or scaled in) closes its connections: the
// client reconnects, possibly to another replica, and sends again the
// requests that got no reply.
const GoingAway = 0x1

// ParseTasks reads a comma-separated list of task names ("classify,detect");
// the empty string is the empty set.
func ParseTasks(list string) (Tasks, error) {
	var ts Tasks
	for name := range strings.SplitSeq(list, ",") {
		if name = strings.TrimSpace(name); name == "" {
			continue
		}
		t, err := ParseTask(name)
		if err != nil {
			return 0, err
		}
		ts = ts.With(t)
	}
	return ts, nil
}

// Tasks is a set of tasks.
type Tasks uint8

// AllTasks is the set of every task.
const AllTasks Tasks = 1<<numTasks - 1

// Has reports whether t is in the set.
func (s Tasks) Has(t Task) bool { return t < numTasks && s&(1<<t) != 0 }

// With returns the set with t added.
func (s Tasks) With(t Task) Tasks { return s | 1<<t }

// List returns the tasks of the set in order.
func (s Tasks) List() []Task {
	var out []Task
	for t := Task(0); t < numTasks; t++ {
		if s.Has(t) {
			out = append(out, t)
		}
	}
	return out
}

// String names the tasks of the set, comma-separated ("classify,segment"),
// so that logs and messages show names, not bits.
func (s Tasks) String() string {
	var names []string
	for _, t := range s.List() {
		names = append(names, t.String())
	}
	if rest := s &^ AllTasks; rest != 0 {
		names = append(names, fmt.Sprintf("bits(%#x)", uint8(rest)))
	}
	return strings.Join(names, ",")
}

// Header is a request header. Its encoding is exactly HeaderSize bytes:
//
//	off size field
//	  0    2 magic "SQ"
//	  2    1 version (1)
//	  3    1 codec id
//	  4    1 task mask (bit 0 classify, 1 detect, 2 segment); not zero
//	  5    1 flags, zero in v1
//	  6    2 channels  \
//	  8    2 height     > shape of the coded tensor (latent, or image)
//	 10    2 width     /
//	 12    8 request id
//	 20    4 deadline: milliseconds the cloud has from receipt; 0 = none
//	 24    4 payload length in bytes
//	 28    4 CRC-32C (Castagnoli) of the payload
//	 32   32 bundle hash (SHA-256 digest)
//
// All integers are big-endian.
type Header struct {
	Codec      uint8
	Tasks      Tasks
	Channels   uint16
	Height     uint16
	Width      uint16
	RequestID  uint64
	DeadlineMS uint32
	PayloadLen uint32
	PayloadCRC uint32
	Bundle     [HashSize]byte
}

// Errors of the parser. Every parse error wraps ErrMalformed.
var (
	ErrMalformed = errors.New("malformed frame")
	ErrVersion   = fmt.Errorf("%w: unsupported protocol version", ErrMalformed)
)

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// AppendHeader appends the encoding of h to dst.
func AppendHeader(dst []byte, h *Header) []byte {
	var b [HeaderSize]byte
	copy(b[0:2], requestMagic[:])
	b[2] = Version
	b[3] = h.Codec
	b[4] = byte(h.Tasks)
	binary.BigEndian.PutUint16(b[6:], h.Channels)
	binary.BigEndian.PutUint16(b[8:], h.Height)
	binary.BigEndian.PutUint16(b[10:], h.Width)
	binary.BigEndian.PutUint64(b[12:], h.RequestID)
	binary.BigEndian.PutUint32(b[20:], h.DeadlineMS)
	binary.BigEndian.PutUint32(b[24:], h.PayloadLen)
	binary.BigEndian.PutUint32(b[28:], h.PayloadCRC)
	copy(b[32:], h.Bundle[:])
	return append(dst, b[:]...)
}

// ParseHeader decodes a request header from the first HeaderSize bytes of b.
// It checks everything that can be checked without the payload: magic,
// version, reserved flags, a non-empty task set, a non-empty shape and a
// payload length within MaxPayload. The request id is returned even with an
// error when the magic and version were right, so that the reply can name it.
func ParseHeader(b []byte) (Header, error) {
	var h Header
	if len(b) < HeaderSize {
		return h, malformed("header is %d bytes, want %d", len(b), HeaderSize)
	}
	if b[0] != requestMagic[0] || b[1] != requestMagic[1] {
		return h, malformed("bad magic %#x %#x", b[0], b[1])
	}
	if b[2] != Version {
		return h, fmt.Errorf("%w %d (this side speaks %d)", ErrVersion, b[2], Version)
	}
	h.Codec = b[3]
	h.Tasks = Tasks(b[4])
	h.Channels = binary.BigEndian.Uint16(b[6:])
	h.Height = binary.BigEndian.Uint16(b[8:])
	h.Width = binary.BigEndian.Uint16(b[10:])
	h.RequestID = binary.BigEndian.Uint64(b[12:])
	h.DeadlineMS = binary.BigEndian.Uint32(b[20:])
	h.PayloadLen = binary.BigEndian.Uint32(b[24:])
	h.PayloadCRC = binary.BigEndian.Uint32(b[28:])
	copy(h.Bundle[:], b[32:64])
	switch {
	case b[5] != 0:
		return h, malformed("reserved flags %#x set", b[5])
	case h.Tasks == 0 || h.Tasks&^AllTasks != 0:
		return h, malformed("task mask %#x", uint8(h.Tasks))
	case h.Channels == 0 || h.Height == 0 || h.Width == 0:
		return h, malformed("empty shape %dx%dx%d", h.Channels, h.Height, h.Width)
	case h.PayloadLen > MaxPayload:
		return h, malformed("payload length %d over %d", h.PayloadLen, MaxPayload)
	}
	return h, nil
}

// ReadHeader reads and parses one request header from r. A stream that ends
// before HeaderSize bytes is a parse error (ErrMalformed); other read errors
// are returned as they are, wrapped.
func ReadHeader(r io.Reader) (Header, error) {
	var hb [HeaderSize]byte
	if _, err := io.ReadFull(r, hb[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return Header{}, malformed("short header: %v", err)
		}
		return Header{}, fmt.Errorf("read header: %w", err)
	}
	return ParseHeader(hb[:])
}

// GrowFunc returns a buffer with the contents of buf and a capacity of at
// least n bytes, or an error that ends the read (a memory budget refusing
// more, say). ReadPayload calls it only when bytes have arrived that do not
// fit.
type GrowFunc func(buf []byte, n int) ([]byte, error)

// firstChunk is the capacity ReadPayload starts with; it doubles as bytes
// arrive, so a peer that claims a large payload and stalls costs no more
// than what it sent (at most twice that).
const firstChunk = 16 << 10

// ReadPayload reads the payload of h from r into buf (reused from its first
// byte; nil is fine) and verifies its checksum. The buffer grows only as
// bytes arrive, through grow (nil: plain allocation), never to more than
// h.PayloadLen: the header's claim decides nothing before the bytes are
// there. It returns the payload, or the buffer it holds so far with an
// error, so that a caller can give it back to its pool either way.
func ReadPayload(r io.Reader, h *Header, buf []byte, grow GrowFunc) ([]byte, error) {
	if grow == nil {
		grow = func(b []byte, n int) ([]byte, error) {
			nb := make([]byte, len(b), n)
			copy(nb, b)
			return nb, nil
		}
	}
	want := int(h.PayloadLen)
	buf = buf[:0]
	for len(buf) < want {
		if len(buf) == cap(buf) {
			n := min(want, max(2*cap(buf), firstChunk))
			nb, err := grow(buf, n)
			if err != nil {
				return buf, err
			}
			if cap(nb) < n || len(nb) != len(buf) {
				return buf, fmt.Errorf("read payload: grow returned %d/%d bytes, want %d/%d", len(nb), cap(nb), len(buf), n)
			}
			buf = nb
		}
		end := min(cap(buf), want)
		n, err := r.Read(buf[len(buf):end])
		buf = buf[:len(buf)+n]
		if err != nil && len(buf) < want {
			if errors.Is(err, io.EOF) {
				return buf, malformed("payload cut short: %d of %d bytes", len(buf), want)
			}
			return buf, fmt.Errorf("read payload: %w", err)
		}
	}
	if c := Checksum(buf); c != h.PayloadCRC {
		return buf, malformed("payload checksum %08x, header says %08x", c, h.PayloadCRC)
	}
	return buf, nil
}

// ReadRequest reads one request (header and payload) from r, allowing at most
// maxPayload payload bytes (MaxPayload if zero or larger). It verifies the
// payload checksum. On a parse error the returned header holds what could be
// read, so the caller can answer with its request id. The payload buffer
// grows as bytes arrive (see ReadPayload).
func ReadRequest(r io.Reader, maxPayload uint32) (Header, []byte, error) {
	if maxPayload == 0 || maxPayload > MaxPayload {
		maxPayload = MaxPayload
	}
	h, err := ReadHeader(r)
	if err != nil {
		return h, nil, err
	}
	if h.PayloadLen > maxPayload {
		return h, nil, malformed("payload length %d over this server's limit %d", h.PayloadLen, maxPayload)
	}
	payload, err := ReadPayload(r, &h, nil, nil)
	if err != nil {
		return h, nil, err
	}
	return h, payload, nil
}

// WriteRequest writes h (with PayloadLen and PayloadCRC filled in from
// payload) and the payload to w.
func WriteRequest(w io.Writer, h Header, payload []byte) error {
	if len(payload) > MaxPayload {
		return fmt.Errorf("payload of %d bytes over %d", len(payload), MaxPayload)
	}
	h.PayloadLen = uint32(len(payload))
	h.PayloadCRC = Checksum(payload)
	buf := AppendHeader(make([]byte, 0, HeaderSize+len(payload)), &h)
	buf = append(buf, payload...)
	_, err := w.Write(buf)
	return err
}
