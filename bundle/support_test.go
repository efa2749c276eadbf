package bundle

import (
	"testing"

	"github.com/splitstream/splitstream/codec"
	"github.com/splitstream/splitstream/wire"
)

func TestSupport(t *testing.T) {
	m, err := ParseManifest([]byte(sampleManifest))
	if err != nil {
		t.Fatal(err)
	}
	split := &Bundle{Manifest: m}
	if got := split.Tasks(); got != wire.AllTasks {
		t.Errorf("split tasks %v, want all", got.List())
	}
	fullM := *m
	fullM.Kind, fullM.Heads = KindFull, m.Heads[:1]
	full := &Bundle{Manifest: &fullM}
	if got := full.Tasks(); got != (wire.Tasks(0)).With(wire.Classify) {
		t.Errorf("classify-only tasks %v", got.List())
	}
	for _, tt := range []struct {
		b  *Bundle
		id codec.ID
		ok bool
	}{
		{split, codec.IDLearned, true}, {split, codec.IDRawF32, true}, {split, codec.IDInt8Zstd, true},
		{split, codec.IDPNG, false}, {split, codec.IDJPEG, false}, {split, codec.ID(99), false},
		{full, codec.IDPNG, true}, {full, codec.IDJPEG, true}, {full, codec.IDWebP, true},
		{full, codec.IDLearned, false}, {full, codec.IDRawF32, false},
	} {
		if got := tt.b.Accepts(tt.id); got != tt.ok {
			t.Errorf("%s bundle accepts %v: %v, want %v", tt.b.Kind, tt.id, got, tt.ok)
		}
		if err := tt.b.CheckCodec(tt.id); (err == nil) != tt.ok {
			t.Errorf("%s bundle CheckCodec(%v) = %v", tt.b.Kind, tt.id, err)
		}
		if tt.ok && tt.id != codec.IDLearned { // the learned codec needs the tables on disk
			c, err := tt.b.NewCodec(tt.id)
			if err != nil || c.ID() != tt.id {
				t.Errorf("%s bundle NewCodec(%v) = %v, %v", tt.b.Kind, tt.id, c, err)
			}
		}
	}
	if c, err := full.DefaultCodec(); err != nil || c.ID() != codec.IDPNG {
		t.Errorf("full default codec %v, %v; want png", c, err)
	}
	for name, want := range map[string]wire.Task{TaskClassification: wire.Classify, TaskDetection: wire.Detect, TaskSegmentation: wire.Segment} {
		if got, ok := WireTask(name); !ok || got != want {
			t.Errorf("WireTask(%q) = %v, %v", name, got, ok)
		}
	}
	if _, ok := WireTask("captioning"); ok {
		t.Error("an unknown task mapped to a wire task")
	}
}
