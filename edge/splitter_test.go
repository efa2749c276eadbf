package edge

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// split runs a splitter over b and returns its files and the bytes it
// reported bad, failing on any other error.
func split(t *testing.T, b []byte) (files [][]byte, bad []int) {
	sp := NewSplitter(bytes.NewReader(b))
	for range len(b) + 1 { // every call consumes at least one byte
		data, err := sp.Next()
		var bi *BadInput
		switch {
		case errors.Is(err, io.EOF):
			return files, bad
		case errors.As(err, &bi):
			if bi.Bytes <= 0 {
				t.Fatalf("bad input of %d bytes", bi.Bytes)
			}
			bad = append(bad, bi.Bytes)
		case err != nil:
			t.Fatalf("unexpected error %v", err)
		default:
			if !isStart(data) {
				t.Fatalf("file starts %x", data[:min(len(data), 8)])
			}
			files = append(files, data)
		}
	}
	t.Fatalf("no end after %d calls", len(b)+1)
	return nil, nil
}

// TestSplitterResyncs: a truncated PNG, a truncated JPEG, a non-image and
// garbage between files each cost one bad record; every good file after
// them comes out whole.
func TestSplitterResyncs(t *testing.T) {
	good := [][]byte{encoded(t, "png", 1), encoded(t, "jpeg", 2), encoded(t, "png", 3), encoded(t, "jpeg", 4), encoded(t, "png", 5)}
	stream := bytes.Join([][]byte{
		good[0],
		good[1][:len(good[1])/2], // truncated JPEG
		good[1],
		[]byte("GIF89a not an image at all"),
		good[2],
		good[3][:40], // truncated PNG? no: JPEG header only
		good[0][:len(good[0])-7],
		good[3],
		{0x89, 'P', 'N', 'G', 0, 0}, // a broken signature
		good[4],
	}, nil)
	files, bad := split(t, stream)
	want := [][]byte{good[0], good[1], good[2], good[3], good[4]}
	if len(files) != len(want) {
		t.Fatalf("%d files, want %d (bad %v)", len(files), len(want), bad)
	}
	for i := range want {
		if !bytes.Equal(files[i], want[i]) {
			t.Fatalf("file %d differs (%d bytes, want %d)", i, len(files[i]), len(want[i]))
		}
	}
	total := 0
	for _, f := range files {
		total += len(f)
	}
	for _, n := range bad {
		total += n
	}
	if total != len(stream) || len(bad) != 5 {
		t.Fatalf("bad records %v; %d bytes accounted for, stream %d", bad, total, len(stream))
	}
}

// TestReadReportsBadStdinFiles: Read turns each bad stretch of stdin into
// an item that names it and carries the error, and goes on.
func TestReadReportsBadStdinFiles(t *testing.T) {
	stdin := bytes.NewReader(bytes.Join([][]byte{[]byte("junk"), encoded(t, "png", 1), encoded(t, "jpeg", 2)[:50], encoded(t, "jpeg", 3)}, nil))
	out := make(chan Item, 10)
	if err := Read(t.Context(), []string{"-"}, stdin, out); err != nil {
		t.Fatal(err)
	}
	var got []string
	for it := range out {
		s := it.Name + " ok"
		if it.Err != nil {
			s = it.Name + " bad"
			if !bytes.Contains([]byte(it.Err.Error()), []byte(it.Name)) {
				t.Errorf("error %q does not name %s", it.Err, it.Name)
			}
		}
		got = append(got, s)
	}
	want := []string{"stdin:0 bad", "stdin:1 ok", "stdin:2 bad", "stdin:3 ok"}
	if len(got) != len(want) {
		t.Fatalf("items %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("items %v, want %v", got, want)
		}
	}
}

// TestPathsFollowSymlinks: a folder's symlinks to images are read; a broken
// one is listed, so that reading it reports the error.
func TestPathsFollowSymlinks(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "real.png"), encoded(t, "png", 1), 0o644); err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(dir, "in")
	os.Mkdir(in, 0o755)
	os.Symlink(filepath.Join(dir, "real.png"), filepath.Join(in, "link.png"))
	os.Symlink(filepath.Join(dir, "gone.png"), filepath.Join(in, "broken.png"))
	os.Symlink(dir, filepath.Join(in, "dir.png")) // a folder: not an image file
	paths, err := Paths([]string{in})
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 2 || filepath.Base(paths[0]) != "broken.png" || filepath.Base(paths[1]) != "link.png" {
		t.Fatalf("paths %v", paths)
	}
	out := make(chan Item, 4)
	Read(t.Context(), paths, nil, out)
	broken, link := <-out, <-out
	if broken.Err == nil || link.Err != nil || len(link.Data) == 0 {
		t.Fatalf("broken: %v; link: %v, %d bytes", broken.Err, link.Err, len(link.Data))
	}
}

// FuzzSplitter: any stream splits into files that start with a signature
// and bad stretches, which together account for every byte, and the
// splitter always ends.
func FuzzSplitter(f *testing.F) {
	png1, jpg := encoded(f, "png", 1), encoded(f, "jpeg", 2)
	f.Add(bytes.Join([][]byte{png1, jpg}, nil))
	f.Add(bytes.Join([][]byte{png1[:30], jpg, []byte("xx"), png1}, nil))
	f.Add([]byte{0xFF, 0xD8, 0xFF, 0xFF, 0xD9, 0x89})
	f.Fuzz(func(t *testing.T, b []byte) {
		files, bad := split(t, b)
		total := 0
		for _, f := range files {
			total += len(f)
		}
		for _, n := range bad {
			total += n
		}
		if total != len(b) {
			t.Fatalf("%d bytes accounted for, stream %d", total, len(b))
		}
	})
}

// TestDecodeRefusesBombs: a PNG whose header claims 20000 x 20000 is
// refused from its header, without decoding it.
func TestDecodeRefusesBombs(t *testing.T) {
	// A 1 x 1 PNG with its IHDR rewritten to say 20000 x 20000.
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewGray(image.Rect(0, 0, 1, 1))); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	binary.BigEndian.PutUint32(b[16:], 20000)
	binary.BigEndian.PutUint32(b[20:], 20000)
	binary.BigEndian.PutUint32(b[29:], crc32.ChecksumIEEE(b[12:29]))
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	before := ms.TotalAlloc
	_, err := DecodeImageLimit(buf.Bytes(), DefaultMaxPixels)
	runtime.ReadMemStats(&ms)
	if err == nil || !strings.Contains(err.Error(), "20000x20000") {
		t.Fatalf("err = %v", err)
	}
	if alloc := ms.TotalAlloc - before; alloc > 1<<20 {
		t.Fatalf("allocated %d bytes to refuse it", alloc)
	}
	if _, err := DecodeImageLimit(encoded(t, "png", 1), 21*12-1); err == nil {
		t.Fatal("image over a small limit decoded")
	}
	if _, err := DecodeImageLimit(encoded(t, "png", 1), 21*12); err != nil {
		t.Fatal(err)
	}
}
