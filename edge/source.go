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
// JPEG files (sorted, not recursive). "-" stays as is (stdin).
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
			if e.Type().IsRegular() && isImageName(e.Name()) {
				files = append(files, filepath.Join(in, e.Name()))
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
		r := bufio.NewReaderSize(stdin, 1<<16)
		for n := 0; ; n++ {
			data, err := NextImage(r)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return fmt.Errorf("stdin image %d: %w", n, err)
			}
			if err := send(Item{Name: fmt.Sprintf("stdin:%d", n), Data: data}); err != nil {
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
func NextImage(r *bufio.Reader) ([]byte, error) {
	head, err := r.Peek(2)
	if len(head) == 0 && errors.Is(err, io.EOF) {
		return nil, io.EOF
	}
	if err != nil {
		return nil, fmt.Errorf("stream ends inside a file: %w", err)
	}
	var buf bytes.Buffer
	take := func(n int) ([]byte, error) {
		if buf.Len()+n > MaxImageFile {
			return nil, fmt.Errorf("image over %d bytes", MaxImageFile)
		}
		start := buf.Len()
		if _, err := io.CopyN(&buf, r, int64(n)); err != nil {
			return nil, fmt.Errorf("stream ends inside a file: %w", noEOF(err))
		}
		return buf.Bytes()[start:], nil
	}
	switch {
	case head[0] == 0x89:
		sig, err := take(8)
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(sig, pngSignature) {
			return nil, errors.New("not a PNG signature")
		}
		for {
			ch, err := take(8)
			if err != nil {
				return nil, err
			}
			n := binary.BigEndian.Uint32(ch)
			if n > MaxImageFile {
				return nil, fmt.Errorf("PNG chunk of %d bytes", n)
			}
			typ := string(ch[4:8])
			if _, err := take(int(n) + 4); err != nil { // data and CRC
				return nil, err
			}
			if typ == "IEND" {
				return buf.Bytes(), nil
			}
		}
	case head[0] == 0xFF && head[1] == 0xD8:
		if _, err := take(2); err != nil {
			return nil, err
		}
		for {
			m, err := take(1)
			if err != nil {
				return nil, err
			}
			if m[0] != 0xFF {
				return nil, fmt.Errorf("JPEG: expected a marker, found %#x", m[0])
			}
			marker := byte(0xFF)
			for marker == 0xFF { // fill bytes may precede a marker
				mb, err := take(1)
				if err != nil {
					return nil, err
				}
				marker = mb[0]
			}
			switch {
			case marker == 0xD9: // EOI
				return buf.Bytes(), nil
			case marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7):
				continue // no length
			}
			l, err := take(2)
			if err != nil {
				return nil, err
			}
			n := int(binary.BigEndian.Uint16(l))
			if n < 2 {
				return nil, fmt.Errorf("JPEG: segment length %d", n)
			}
			if _, err := take(n - 2); err != nil {
				return nil, err
			}
			if marker != 0xDA { // SOS: entropy-coded data follows
				continue
			}
			if err := scanEntropyData(r, &buf); err != nil {
				return nil, err
			}
		}
	default:
		return nil, fmt.Errorf("stream holds neither PNG nor JPEG (starts %#x %#x)", head[0], head[1])
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
