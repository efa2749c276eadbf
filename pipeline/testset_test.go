package pipeline

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/splitstream/splitstream/bundle"
	"github.com/splitstream/splitstream/models"
)

// writeTestSet writes the first n images of the shipped test set into a new
// folder, through edit (which may drop ground truth or rename labels).
func writeTestSet(t *testing.T, n int, edit func(meta map[string]any, im map[string]any)) string {
	t.Helper()
	src := filepath.Join("..", bundle.ZooDir, "testset")
	data, err := os.ReadFile(filepath.Join(src, "labels.json"))
	if err != nil {
		t.Skipf("no shipped test set: %v", err)
	}
	var meta map[string]any
	if err := json.Unmarshal(data, &meta); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	images := meta["images"].([]any)[:n]
	for _, it := range images {
		im := it.(map[string]any)
		for _, key := range []string{"file", "mask"} {
			b, err := os.ReadFile(filepath.Join(src, im[key].(string)))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, im[key].(string)), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		edit(meta, im)
	}
	meta["images"] = images
	out, _ := json.Marshal(meta)
	if err := os.WriteFile(filepath.Join(dir, "labels.json"), out, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// evalOn evaluates the first n images (0: all) of the test set in dir ("":
// the bundle's own) with the native engine on one thread.
func evalOn(b *bundle.Bundle, dir string, n int) (Scores, error) {
	var ts *bundle.TestSet
	if dir != "" {
		var err error
		if ts, err = bundle.LoadTestSet(dir); err != nil {
			return Scores{}, err
		}
	}
	return Evaluate(context.Background(), b, EvalOptions{Engine: Engine{Kind: models.Native, Options: models.Options{Threads: 1}}, Limit: n, TestSet: ts})
}

// TestEvalOnATestSetInAnotherFolder evaluates a bundle copied away from the
// zoo (its own "../testset" no longer exists) on a test set in a third
// folder: the same figures as on the same images of its own test set; a set
// without masks scores the other tasks and says what it lacks; a set whose
// labels differ is refused.
func TestEvalOnATestSetInAnotherFolder(t *testing.T) {
	const n = 12
	src := filepath.Join("..", bundle.ZooDir, "fmnist-es-b0.3")
	own, err := bundle.Load(src)
	if err != nil {
		t.Skipf("no shipped bundle: %v", err)
	}
	want, err := evalOn(own, "", n)
	if err != nil {
		t.Fatal(err)
	}
	away := filepath.Join(t.TempDir(), "b")
	if err := os.CopyFS(away, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	b, err := bundle.Load(away)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := evalOn(b, "", n); err == nil {
		t.Fatal("a bundle away from its test set evaluated without --testset")
	}

	full := writeTestSet(t, n, func(map[string]any, map[string]any) {})
	got, err := evalOn(b, full, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got.Top1 != want.Top1 || got.MAP50 != want.MAP50 || got.MIoU != want.MIoU || got.Images != n || len(got.Unscored) != 0 {
		t.Errorf("on the copied test set %+v, on the bundle's own %+v", got, want)
	}

	noMasks := writeTestSet(t, n, func(_ map[string]any, im map[string]any) { delete(im, "mask") })
	got, err = evalOn(b, noMasks, 0)
	if err != nil {
		t.Fatal(err)
	}
	why := got.Unscored[bundle.TaskSegmentation]
	if !strings.Contains(why, `no "mask"`) || len(got.Unscored) != 1 || got.Top1 != want.Top1 || got.MAP50 != want.MAP50 || got.MIoU != 0 {
		t.Errorf("without masks: %+v", got)
	}

	renamed := writeTestSet(t, n, func(meta map[string]any, _ map[string]any) {
		meta["labels"].([]any)[0] = "tee"
	})
	if _, err := evalOn(b, renamed, 0); err == nil || !strings.Contains(err.Error(), "differ") {
		t.Errorf("labels that differ from the bundle's: err %v", err)
	}
}
