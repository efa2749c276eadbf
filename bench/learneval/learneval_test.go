package learneval

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/splitstream/splitstream/bundle"
	"github.com/splitstream/splitstream/edge/learn"
)

const zoo = "../../models/zoo"

func loadBundle(t testing.TB, name string) *bundle.Bundle {
	t.Helper()
	b, err := bundle.Load(filepath.Join(zoo, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTrainEval trains on the first shipped test images and evaluates on
// the next ones through the real split path, for both inputs, and checks
// that Eval refuses the model for another bundle.
func TestTrainEval(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the encoder, trunk and head")
	}
	b := loadBundle(t, "fmnist-es-b0.11")
	ctx := context.Background()
	testDir := filepath.Join(b.Dir, b.Manifest.TestSet)
	for _, in := range []Input{Latent, Trunk} {
		dir := t.TempDir()
		o := Options{Input: in, Limit: 12, Learn: learn.Config{MinScore: 0.2, Buffer: 20, EpochEvery: 5}}
		tr, err := Train(ctx, b, dir, testDir, o)
		if err != nil {
			t.Fatal(err)
		}
		if tr.Images != 12 || tr.Learned < 1 || tr.Learned > tr.Images {
			t.Fatalf("%s: trained %+v", in, tr)
		}
		r, err := Eval(ctx, b, dir, testDir, o)
		if err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(filepath.Join(dir, learn.FileName))
		if err != nil {
			t.Fatal(err)
		}
		if r.Images != 12 || r.SamplesTrained != uint64(tr.Learned) || r.ModelBytes != st.Size() || r.TrainMSPer1000 <= 0 {
			t.Errorf("%s: eval %+v after training %+v (model file %d bytes)", in, r, tr, st.Size())
		}
		if r.Top1Cloud < 0.5 {
			t.Errorf("%s: the cloud head's top-1 on 12 test images is %.3f", in, r.Top1Cloud)
		}
		other := loadBundle(t, "fmnist-es-b0.3")
		if _, err := Eval(ctx, other, dir, testDir, o); !errors.Is(err, learn.ErrOtherBundle) {
			t.Errorf("%s: eval with another bundle: %v, want ErrOtherBundle", in, err)
		}
	}
}

// samples holds the collected samples per folder and input, for the
// benchmark's sub-benchmarks.
var samples = struct {
	sync.Mutex
	m map[string][]Sample
}{m: map[string][]Sample{}}

func collect(b *testing.B, bn *bundle.Bundle, dir string, in Input) []Sample {
	samples.Lock()
	defer samples.Unlock()
	key := dir + "|" + string(in)
	if s, ok := samples.m[key]; ok {
		return s
	}
	var s []Sample
	start := time.Now()
	if err := Walk(context.Background(), bn, dir, Options{Input: in}, func(x Sample) error {
		s = append(s, x)
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	fmt.Printf("collected %d samples of %s (%s) in %.1f s\n", len(s), dir, in, time.Since(start).Seconds())
	samples.m[key] = s
	return s
}

// BenchmarkLearn is the experiment of docs/EDGE2TRAIN.md: local models
// trained on the scenes in $SPLITSTREAM_LEARN_TRAIN (a folder in the
// test-set format; fresh scenes, not the test set) labelled by the cloud
// head of fmnist-es-b0.11, scored on the shipped test set next to the
// cloud head. Run it with
//
//	SPLITSTREAM_LEARN_TRAIN=DIR go test ./bench/learneval -run X -bench Learn -benchtime 1x
//
// Per configuration it reports top1_local, top1_cloud, ms per 1000
// samples learned, the learner's state in bytes (all allocated by New),
// the bytes allocated while training and the model file's size.
func BenchmarkLearn(b *testing.B) {
	trainDir := os.Getenv("SPLITSTREAM_LEARN_TRAIN")
	if trainDir == "" {
		b.Skip("set SPLITSTREAM_LEARN_TRAIN to a folder of fresh scenes")
	}
	bn := loadBundle(b, "fmnist-es-b0.11")
	testDir := filepath.Join(bn.Dir, bn.Manifest.TestSet)
	labels := bn.Head(bundle.TaskClassification).Labels
	stats := learn.Mean | learn.Max | learn.Std
	type run struct {
		in   Input
		feat learn.Features
		cfg  learn.Config
	}
	var runs []run
	for _, f := range []learn.Features{
		{Stats: learn.Mean},
		{Stats: stats},
		{Stats: stats, Grid: 2, Global: true},
		{Stats: stats, Grid: 4},
		{Stats: learn.Mean | learn.Max, Filters: 64},
		{Stats: learn.Mean | learn.Max, Filters: 256, Grid: 2, Global: true},
	} {
		for _, m := range []learn.Model{learn.Pegasos, learn.Logistic} {
			runs = append(runs, run{Latent, f, learn.Config{Model: m}})
		}
	}
	for _, f := range []learn.Features{{Stats: learn.Mean}, {Stats: stats}, {Stats: stats, Grid: 2, Global: true}} {
		for _, m := range []learn.Model{learn.Pegasos, learn.Logistic} {
			runs = append(runs, run{Trunk, f, learn.Config{Model: m}})
		}
	}
	for _, th := range []float32{0.01, 0.7, 0.9} {
		runs = append(runs, run{Trunk, learn.Features{}, learn.Config{MinScore: th}})
	}
	for _, r := range runs {
		cfg := r.cfg
		cfg.Features = r.feat
		cfg.MaxFeatures = 1 << 14
		// Zero fields take the defaults: name them so.
		model, minScore := "default", "default"
		if cfg.Model != 0 {
			model = cfg.Model.String()
		}
		if cfg.MinScore != 0 {
			minScore = fmt.Sprint(cfg.MinScore)
		}
		name := fmt.Sprintf("%s/%v/%s/min-score-%s", r.in, cfg.Features, model, minScore)
		b.Run(name, func(b *testing.B) {
			train := collect(b, bn, trainDir, r.in)
			test := collect(b, bn, testDir, r.in)
			shape, err := InputShape(bn, Options{Input: r.in})
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				l, err := learn.New(bn.ID, shape, labels, cfg)
				if err != nil {
					b.Fatal(err)
				}
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				tr, err := Teach(l, train)
				if err != nil {
					b.Fatal(err)
				}
				runtime.ReadMemStats(&after)
				var t Tally
				for _, s := range test {
					if err := t.Add(l, s); err != nil {
						b.Fatal(err)
					}
				}
				local, cloud := t.Top1()
				info := l.Info()
				b.ReportMetric(local, "top1_local")
				b.ReportMetric(cloud, "top1_cloud")
				b.ReportMetric(float64(tr.Learned), "learned")
				b.ReportMetric(tr.CloudLabelAccuracy, "label_acc")
				b.ReportMetric(MSPer1000(info.Spent, info.Samples), "ms/1000samples")
				b.ReportMetric(float64(info.Dim), "features")
				b.ReportMetric(float64(info.Bytes), "state_bytes")
				b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc), "alloc_bytes")
				b.ReportMetric(float64(len(l.Marshal())), "model_bytes")
			}
		})
	}
}

// BenchmarkTrunk times the trunk graph on the edge per image (the cost of
// Input Trunk on top of the encoder), with the native engine.
func BenchmarkTrunk(b *testing.B) {
	bn := loadBundle(b, "fmnist-es-b0.11")
	in, err := openInput(bn, Options{Input: Trunk})
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	y := make([]float32, bn.Shape().Len())
	for b.Loop() {
		if _, err := in.Run(context.Background(), y); err != nil {
			b.Fatal(err)
		}
	}
}
