package edge

import (
	"errors"
	"flag"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/splitstream/splitstream/bundle"
	"github.com/splitstream/splitstream/bundle/bundletest"
	"github.com/splitstream/splitstream/codec"
	"github.com/splitstream/splitstream/edge/policy"
	"github.com/splitstream/splitstream/wire"
)

// Points are ranked by the manifest's top-1, a lossy image codec by its
// measured top-1 capped at the manifest's; names follow bench trace.
func TestRankAccuracy(t *testing.T) {
	full := &bundle.Bundle{Manifest: &bundle.Manifest{Name: "teacher", Kind: bundle.KindFull, Metrics: bundle.Metrics{Top1: 0.858, Images: 500}}}
	split := &bundle.Bundle{Manifest: &bundle.Manifest{Name: "b0.11", Kind: bundle.KindSplit, Metrics: bundle.Metrics{Top1: 0.844, Images: 500}}}
	img := func(id codec.ID, q int) codec.Codec {
		c, err := codec.NewImage(id, codec.ImageOptions{Quality: q})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, tc := range []struct {
		name     string
		b        *bundle.Bundle
		c        codec.Codec
		measured float64
		want     float64
	}{
		{"learned", split, nil, 0.5, 0.844},
		{"png", full, img(codec.IDPNG, 0), 0.5, 0.858},
		{"jpeg measured", full, img(codec.IDJPEG, 10), 0.54, 0.54},
		{"webp above the image", full, img(codec.IDWebP, 50), 1, 0.858},
		{"local", full, nil, 0.1, 0.858},
	} {
		if got := RankAccuracy(tc.b, tc.c, tc.measured); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	if got, want := ImagePointName(codec.IDJPEG, 50)+","+ImagePointName(codec.IDPNG, 0)+","+LearnedPointName(split), "jpeg-q50,png,learned-b0.11"; got != want {
		t.Errorf("names %s, want %s", got, want)
	}
}

// A frame's outcome teaches the policy: no answer or an error reply is a
// failure (two in a row: the link is down), an answer brings the link
// back, and a frame that failed on the edge teaches nothing.
func TestOutcomeFeedsThePolicy(t *testing.T) {
	b := &bundle.Bundle{Manifest: &bundle.Manifest{Name: "b", Kind: bundle.KindSplit, Metrics: bundle.Metrics{Top1: 0.8, Images: 100}}}
	op := &operating{points: []Point{{Name: "learned", Bundle: b, Accuracy: 0.8}, {Name: "local", Bundle: b, Local: true}}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	op.pol = NewPolicy(op.points, policy.Options{SLO: 100 * time.Millisecond})
	noReply := Record{Status: "error", err: errors.New("timeout")}
	undecodable := Record{Status: "error", Error: "not an image"}
	op.outcome(0, noReply)
	op.outcome(0, undecodable)
	if op.pol.LinkDown() {
		t.Fatal("one failure and an undecodable image marked the link down")
	}
	op.outcome(0, Record{Status: "overloaded", Reply: &wire.Reply{Status: wire.StatusOverloaded}})
	if !op.pol.LinkDown() {
		t.Fatal("two failed requests in a row did not mark the link down")
	}
	op.outcome(1, Record{Status: "ok", Source: "local", Latency: Latency{Total: 40}})
	if !op.pol.LinkDown() {
		t.Error("a local answer marked the link up")
	}
	if got := op.pol.Predict(1); got != 40 {
		t.Errorf("the local point's prediction %v ms, want its 40 ms", got)
	}
	op.outcome(0, Record{Status: "ok", Bytes: 300, Reply: &wire.Reply{Status: wire.StatusOK},
		Latency: Latency{Encoder: 5, Network: 20, Heads: 5, Total: 30}})
	if op.pol.LinkDown() {
		t.Error("an answer did not mark the link up")
	}
}

// --policy takes fixed or adaptive, --slo a duration.
func TestPolicyFlags(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		adaptive bool
		slo      time.Duration
		err      bool
	}{
		{nil, false, 150 * time.Millisecond, false},
		{[]string{"--policy", "fixed"}, false, 150 * time.Millisecond, false},
		{[]string{"--policy", "adaptive", "--slo", "80ms"}, true, 80 * time.Millisecond, false},
		{[]string{"--policy", "fastest"}, false, 0, true},
	} {
		var o PolicyOptions
		fs := flag.NewFlagSet("edge", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		o.Flags(fs)
		err := fs.Parse(tc.args)
		if (err != nil) != tc.err {
			t.Errorf("%v: error %v", tc.args, err)
			continue
		}
		if !tc.err && (o.Adaptive != tc.adaptive || o.Policy.SLO != tc.slo) {
			t.Errorf("%v: adaptive %v slo %v", tc.args, o.Adaptive, o.Policy.SLO)
		}
	}
}

// A setup that fails (here: the policy chooses the codecs, so --codec is
// refused) returns its error and releases what it opened.
func TestSetupFailsCleanly(t *testing.T) {
	dir := t.TempDir()
	if err := bundletest.Write(dir, "tb"); err != nil {
		t.Fatal(err)
	}
	b, err := bundle.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]Setup{
		"codec not for the bundle": {Bundle: b, Encoder: EncoderOptions{Codec: mustImage(t)}},
		"adaptive with --codec": {Encoder: EncoderOptions{Open: (&bundletest.Engines{}).Open, Codec: codec.Raw{}},
			Policy: PolicyOptions{Adaptive: true, Bundles: []*bundle.Bundle{b}}},
	} {
		if _, _, err := s.Open(); err == nil {
			t.Errorf("%s: opened", name)
		}
	}
}

func mustImage(t *testing.T) codec.Codec {
	c, err := codec.NewImage(codec.IDPNG, codec.ImageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
