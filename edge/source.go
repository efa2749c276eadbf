package edge

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Item is one input image file.
type Item struct {
	Index int
	Name  string // path, or "stdin:N"
	Data  []byte
	Err   error // reading failed; Data is nil
}

// MaxImageFile bounds the size of one input file.
const MaxImageFile = 64 << 20

// isImageName reports whether a file name looks like a PNG or JPEG file.
func isImageName(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".png", ".jpg", ".jpeg":
		return true
	}
	return false
}

// Paths expands the inputs: files as they are, folders into their PNG and
// JPEG files (sorted, not recursive; symbolic links are followed, and a
// broken one is listed so that reading it reports the error). "-" stays as
// is (stdin).
func Paths(inputs []string) ([]string, error) {
	var out []string
	for _, in := range inputs {
		if in == "-" {
			out = append(out, in)
			continue
		}
		st, err := os.Stat(in)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			out = append(out, in)
			continue
		}
		ents, err := os.ReadDir(in)
		if err != nil {
			return nil, err
		}
		var files []string
		for _, e := range ents {
			if !isImageName(e.Name()) {
				continue
			}
			p := filepath.Join(in, e.Name())
			switch {
			case e.Type().IsRegular():
				files = append(files, p)
			case e.Type()&os.ModeSymlink != 0:
				// Followed; a broken link is listed so that reading it
				// reports the error, a link to a folder is not an image.
				if st, err := os.Stat(p); err != nil || st.Mode().IsRegular() {
					files = append(files, p)
				}
			}
		}
		slices.Sort(files)
		out = append(out, files...)
	}
	return out, nil
}

// Read sends the images of the given paths ("-" for a stream of PNG and
// JPEG files on stdin) to out, in order, and closes it.
func Read(ctx context.Context, paths []string, stdin io.Reader, out chan<- Item) error {
	defer close(out)
	idx := 0
	send := func(it Item) error {
		it.Index = idx
		idx++
		select {
		case out <- it:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for _, p := range paths {
		if p != "-" {
			data, err := readLimited(p)
			if err := send(Item{Name: p, Data: data, Err: err}); err != nil {
				return err
			}
			continue
		}
		sp := NewSplitter(stdin)
		for n := 0; ; n++ {
			data, err := sp.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			var bad *BadInput
			if errors.As(err, &bad) {
				err = fmt.Errorf("stdin:%d: %w", n, err)
			} else if err != nil {
				return fmt.Errorf("stdin image %d: %w", n, err)
			}
			if err := send(Item{Name: fmt.Sprintf("stdin:%d", n), Data: data, Err: err}); err != nil {
				return err
			}
		}
	}
	return nil
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxImageFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxImageFile {
		return nil, fmt.Errorf("%s: over %d bytes", path, MaxImageFile)
	}
	return data, nil
}

var pngSignature = []byte("\x89PNG\r\n\x1a\n")

// NextImage reads exactly one PNG or JPEG file from a stream of files
// written one after another, by walking the PNG chunks up to IEND or the
// JPEG segments up to EOI. It returns io.EOF at a clean end of the stream.
// After an error the reader is left inside the bad file: Splitter
// resynchronises instead.
func NextImage(r *bufio.Reader) ([]byte, error) {
	head, err := r.Peek(2)
	if len(head) == 0 && errors.Is(err, io.EOF) {
		return nil, io.EOF
	}
	var buf bytes.Buffer
	if err := nextImage(r, &buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// BadInput is the error for bytes of a stream that do not form a PNG or
// JPEG file: Bytes of them were skipped.
type BadInput struct {
	Bytes int
	Err   error
}

func (e *BadInput) Error() string {
	return fmt.Sprintf("%d bytes skipped: %v", e.Bytes, e.Err)
}

func (e *BadInput) Unwrap() error { return e.Err }

// pushback is a reader that returns pending bytes before those of r.
type pushback struct {
	pending []byte
	r       io.Reader
}

func (p *pushback) Read(b []byte) (int, error) {
	if len(p.pending) > 0 {
		n := copy(b, p.pending)
		p.pending = p.pending[n:]
		return n, nil
	}
	return p.r.Read(b)
}

// Splitter splits a stream of PNG and JPEG files written one after another
// (as `cat a.png b.jpg | splitstream edge --input -` gives). A file that
// does not parse (truncated, not an image, garbage between files) is
// reported as a *BadInput error and the splitter resynchronises at the next
// PNG signature or JPEG start of image (FF D8 FF) after the bad file's
// first byte, so one bad file costs one record, not the rest of the stream.
// (A JPEG that embeds a thumbnail, cut short before its end, resynchronises
// at the thumbnail.) Memory is bounded by MaxImageFile.
type Splitter struct {
	src *pushback
	br  *bufio.Reader
}

// NewSplitter returns a splitter reading r.
func NewSplitter(r io.Reader) *Splitter {
	pb := &pushback{r: r}
	return &Splitter{src: pb, br: bufio.NewReaderSize(pb, 1<<16)}
}

// isStart reports whether p begins with a PNG signature or a JPEG start of
// image followed by a marker.
func isStart(p []byte) bool {
	return (len(p) >= 8 && bytes.Equal(p[:8], pngSignature)) || (len(p) >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF)
}

// signatureAt returns the offset of the first file start in b, or -1.
func signatureAt(b []byte) int {
	for i := range b {
		if (b[i] == 0x89 || b[i] == 0xFF) && isStart(b[i:]) {
			return i
		}
	}
	return -1
}

// unread puts b back in front of the bytes the splitter has not read yet.
func (s *Splitter) unread(b []byte) {
	buffered, _ := s.br.Peek(s.br.Buffered())
	pending := make([]byte, 0, len(b)+len(buffered)+len(s.src.pending))
	pending = append(append(append(pending, b...), buffered...), s.src.pending...)
	s.src.pending = pending
	s.br.Reset(s.src)
}

// skip discards bytes up to the next file start (or the end of the stream)
// and returns how many it discarded.
func (s *Splitter) skip() int {
	n := 0
	for {
		p, _ := s.br.Peek(8)
		if len(p) == 0 || isStart(p) {
			return n
		}
		s.br.Discard(1)
		n++
	}
}

// Next returns the next file of the stream, a *BadInput error for bytes that
// are not one, or io.EOF at the end of the stream.
func (s *Splitter) Next() ([]byte, error) {
	p, _ := s.br.Peek(8)
	if len(p) == 0 {
		return nil, io.EOF
	}
	if !isStart(p) {
		return nil, &BadInput{Bytes: s.skip(), Err: fmt.Errorf("neither a PNG nor a JPEG signature (starts %#x)", p[0])}
	}
	var buf bytes.Buffer
	err := nextImage(s.br, &buf)
	if err == nil {
		return buf.Bytes(), nil
	}
	att := buf.Bytes()
	if k := signatureAt(att[1:]); k >= 0 {
		s.unread(att[k+1:])
		return nil, &BadInput{Bytes: k + 1, Err: err}
	}
	// No file starts inside the attempt; one may start in its last bytes
	// and go on in the stream.
	keep := min(7, len(att)-1)
	s.unread(att[len(att)-keep:])
	return nil, &BadInput{Bytes: len(att) - keep + s.skip(), Err: err}
}

// nextImage reads one PNG or JPEG file from r into buf (see NextImage); on
// an error buf holds the bytes it consumed.
func nextImage(r *bufio.Reader, buf *bytes.Buffer) error {
	head, err := r.Peek(2)
	if err != nil {
		return fmt.Errorf("stream ends inside a file: %w", noEOF(err))
	}
	take := func(n int) ([]byte, error) {
		if buf.Len()+n > MaxImageFile {
			return nil, fmt.Errorf("image over %d bytes", MaxImageFile)
		}
		start := buf.Len()
		if _, err := io.CopyN(buf, r, int64(n)); err != nil {
			return nil, fmt.Errorf("stream ends inside a file: %w", noEOF(err))
		}
		return buf.Bytes()[start:], nil
	}
	switch {
	case head[0] == 0x89:
		sig, err := take(8)
		if err != nil {
			return err
		}
		if !bytes.Equal(sig, pngSignature) {
			return errors.New("not a PNG signature")
		}
		for {
			ch, err := take(8)
			if err != nil {
				return err
			}
			n := binary.BigEndian.Uint32(ch)
			if n > MaxImageFile {
				return fmt.Errorf("PNG chunk of %d bytes", n)
			}
			typ := string(ch[4:8])
			if _, err := take(int(n) + 4); err != nil { // data and CRC
				return err
			}
			if typ == "IEND" {
				return nil
			}
		}
	case head[0] == 0xFF && head[1] == 0xD8:
		if _, err := take(2); err != nil {
			return err
		}
		for {
			m, err := take(1)
			if err != nil {
				return err
			}
			if m[0] != 0xFF {
				return fmt.Errorf("JPEG: expected a marker, found %#x", m[0])
			}
			marker := byte(0xFF)
			for marker == 0xFF { // fill bytes may precede a marker
				mb, err := take(1)
				if err != nil {
					return err
				}
				marker = mb[0]
			}
			switch {
			case marker == 0xD9: // EOI
				return nil
			case marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7):
				continue // no length
			}
			l, err := take(2)
			if err != nil {
				return err
			}
			n := int(binary.BigEndian.Uint16(l))
			if n < 2 {
				return fmt.Errorf("JPEG: segment length %d", n)
			}
			if _, err := take(n - 2); err != nil {
				return err
			}
			if marker != 0xDA { // SOS: entropy-coded data follows
				continue
			}
			if err := scanEntropyData(r, buf); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("stream holds neither PNG nor JPEG (starts %#x %#x)", head[0], head[1])
	}
}

// scanEntropyData copies JPEG entropy-coded data up to (not including) the
// next marker other than a stuffed zero or a restart marker.
func scanEntropyData(r *bufio.Reader, buf *bytes.Buffer) error {
	for {
		p, err := r.Peek(2)
		if len(p) < 2 {
			return fmt.Errorf("stream ends inside JPEG data: %w", noEOF(err))
		}
		if p[0] == 0xFF && p[1] != 0x00 && p[1] != 0xFF && !(p[1] >= 0xD0 && p[1] <= 0xD7) {
			return nil // a marker: left in the reader
		}
		b, _ := r.ReadByte()
		buf.WriteByte(b)
		if buf.Len() > MaxImageFile {
			return fmt.Errorf("image over %d bytes", MaxImageFile)
		}
	}
}

func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
