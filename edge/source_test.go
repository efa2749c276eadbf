package edge

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func testImage(w, h int, seed uint8) image.Image {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x*7) + seed, uint8(y * 5), seed * 3, 255})
		}
	}
	return img
}

func encoded(t testing.TB, format string, seed uint8) []byte {
	var buf bytes.Buffer
	img := testImage(20+int(seed), 12, seed)
	var err error
	if format == "png" {
		err = png.Encode(&buf, img)
	} else {
		err = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 80})
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestNextImageSplitsAStream(t *testing.T) {
	files := [][]byte{encoded(t, "png", 1), encoded(t, "jpeg", 2), encoded(t, "jpeg", 3), encoded(t, "png", 4)}
	stream := bytes.Join(files, nil)
	r := bufio.NewReader(bytes.NewReader(stream))
	for i, want := range files {
		got, err := NextImage(r)
		if err != nil {
			t.Fatalf("image %d: %v", i, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("image %d: %d bytes, want the %d bytes of the file", i, len(got), len(want))
		}
		if _, err := DecodeImage(got); err != nil {
			t.Fatalf("image %d does not decode: %v", i, err)
		}
	}
	if _, err := NextImage(r); !errors.Is(err, io.EOF) {
		t.Fatalf("after the last image: %v, want io.EOF", err)
	}
	for _, bad := range [][]byte{files[0][:len(files[0])-5], files[1][:len(files[1])/2], []byte("GIF89a...")} {
		if _, err := NextImage(bufio.NewReader(bytes.NewReader(bad))); err == nil || errors.Is(err, io.EOF) {
			t.Errorf("cut or foreign stream: err = %v", err)
		}
	}
}

func TestReadFilesFoldersAndStdin(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"b.png", "a.jpg", "notes.txt"} {
		data := encoded(t, "png", 1)
		if n == "a.jpg" {
			data = encoded(t, "jpeg", 1)
		}
		if err := os.WriteFile(filepath.Join(dir, n), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	paths, err := Paths([]string{dir, "-"})
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 3 || filepath.Base(paths[0]) != "a.jpg" || filepath.Base(paths[1]) != "b.png" || paths[2] != "-" {
		t.Fatalf("paths %v", paths)
	}
	stdin := bytes.NewReader(bytes.Join([][]byte{encoded(t, "jpeg", 5), encoded(t, "png", 6)}, nil))
	out := make(chan Item, 10)
	if err := Read(context.Background(), paths, stdin, out); err != nil {
		t.Fatal(err)
	}
	var names []string
	for it := range out {
		if it.Err != nil {
			t.Fatal(it.Err)
		}
		if _, err := DecodeImage(it.Data); err != nil {
			t.Fatalf("%s: %v", it.Name, err)
		}
		names = append(names, it.Name)
	}
	if len(names) != 4 || names[2] != "stdin:0" || names[3] != "stdin:1" {
		t.Fatalf("items %v", names)
	}
}

func FuzzNextImage(f *testing.F) {
	f.Add(encoded(f, "png", 1))
	f.Add(encoded(f, "jpeg", 2))
	f.Add([]byte{0xFF, 0xD8, 0xFF, 0xFF, 0xD9})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bufio.NewReader(bytes.NewReader(b))
		total := 0
		for {
			img, err := NextImage(r)
			if err != nil {
				break
			}
			if len(img) == 0 {
				t.Fatal("empty image without an error")
			}
			total += len(img)
			if total > len(b) {
				t.Fatalf("returned %d bytes from %d", total, len(b))
			}
		}
	})
}

func TestSummary(t *testing.T) {
	var s Summary
	for i := 1; i <= 100; i++ {
		s.Add(Record{Status: "ok", Bytes: 100 + i, Latency: Latency{Total: float64(i)}})
	}
	s.Add(Record{Status: "overloaded"})
	if s.Count != 101 || s.Errors != 1 || s.BytesPerImage() != 150.5 {
		t.Fatalf("count %d errors %d bytes/image %v", s.Count, s.Errors, s.BytesPerImage())
	}
	if p := s.Latency()["total"]; p.P50 != 50 || p.P95 != 95 || p.P99 != 99 {
		t.Fatalf("percentiles %+v", p)
	}
	var buf bytes.Buffer
	s.Write(&buf)
	if !bytes.Contains(buf.Bytes(), []byte("total")) || !bytes.Contains(buf.Bytes(), []byte("errors 1")) {
		t.Fatalf("table:\n%s", buf.String())
	}
}
