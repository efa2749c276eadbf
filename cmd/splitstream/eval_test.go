package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/splitstream/splitstream/bundle"
)

// captureStdout runs f with os.Stdout redirected and returns what it wrote.
func captureStdout(t *testing.T, f func() error) []byte {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = w
	done := make(chan []byte)
	go func() { b, _ := io.ReadAll(r); done <- b }()
	ferr := f()
	os.Stdout = old
	w.Close()
	out := <-done
	if ferr != nil {
		t.Fatalf("%v\n%s", ferr, out)
	}
	return out
}

// TestDemoJSON runs the demo on the first test images of the shipped split
// bundle and checks its JSON: eval's keys plus latency percentiles.
func TestDemoJSON(t *testing.T) {
	b, err := bundle.FirstSplit(filepath.Join("..", "..", bundle.ZooDir))
	if err != nil {
		t.Skip(err)
	}
	dir := b.Dir
	out := captureStdout(t, func() error {
		return runDemo(context.Background(), []string{"--json", "--limit", "24", "--bundle", dir})
	})
	var got map[string]json.RawMessage
	if err := json.Unmarshal(bytes.TrimSpace(out), &got); err != nil {
		t.Fatalf("demo --json printed %q: %v", out, err)
	}
	for _, k := range []string{"top1", "map50", "miou", "bytes_per_image", "images", "latency_ms"} {
		if _, ok := got[k]; !ok {
			t.Errorf("demo --json lacks %q: %s", k, out)
		}
	}
	var lat struct{ P50, P95, P99 float64 }
	if err := json.Unmarshal(got["latency_ms"], &lat); err != nil || !(lat.P50 > 0 && lat.P50 <= lat.P95 && lat.P95 <= lat.P99) {
		t.Errorf("latency_ms %s: %v", got["latency_ms"], err)
	}
	var images int
	if json.Unmarshal(got["images"], &images); images != 24 {
		t.Errorf("images %d, want 24", images)
	}

	// And the table form prints the metrics and the latency breakdown.
	table := captureStdout(t, func() error {
		return runDemo(context.Background(), []string{"--limit", "8", "--bundle", filepath.Clean(dir)})
	})
	for _, want := range []string{"top1", "mAP@0.5", "mIoU", "bytes/image", "network", "heads", "total", "p99"} {
		if !bytes.Contains(table, []byte(want)) {
			t.Errorf("demo output lacks %q:\n%s", want, table)
		}
	}
}
