package bundle

import (
	"fmt"

	"github.com/splitstream/splitstream/codec"
	"github.com/splitstream/splitstream/wire"
)

// This file is the one place that says what a bundle supports: which codecs
// carry its payloads and which wire tasks its heads answer. Edge, cloud,
// bench and cmd ask here instead of deciding for themselves.

// WireTask maps a manifest head task ("classification", ...) to its task on
// the wire.
func WireTask(task string) (wire.Task, bool) {
	switch task {
	case TaskClassification:
		return wire.Classify, true
	case TaskDetection:
		return wire.Detect, true
	case TaskSegmentation:
		return wire.Segment, true
	}
	return 0, false
}

// Tasks is the set of wire tasks the bundle has heads for.
func (b *Bundle) Tasks() wire.Tasks {
	var s wire.Tasks
	for _, h := range b.Heads {
		if t, ok := WireTask(h.Task); ok {
			s = s.With(t)
		}
	}
	return s
}

// latentCodecs and imageCodecs are what split and full bundles take.
var (
	latentCodecs = []codec.ID{codec.IDLearned, codec.IDRawF32, codec.IDInt8Zstd}
	imageCodecs  = []codec.ID{codec.IDPNG, codec.IDJPEG, codec.IDWebP}
)

// Codecs lists the codecs whose payloads the bundle's cloud side takes: the
// learned codec and the latent baselines for a split bundle, the image
// codecs for a full one.
func (b *Bundle) Codecs() []codec.ID {
	if b.Kind == KindSplit {
		return latentCodecs
	}
	return imageCodecs
}

// Accepts reports whether the bundle takes payloads coded with id.
func (b *Bundle) Accepts(id codec.ID) bool {
	for _, c := range b.Codecs() {
		if c == id {
			return true
		}
	}
	return false
}

// CheckCodec returns an error that says why the bundle does not take
// payloads coded with id, or nil when it does.
func (b *Bundle) CheckCodec(id codec.ID) error {
	if b.Accepts(id) {
		return nil
	}
	if b.Kind == KindSplit {
		return fmt.Errorf("bundle %s is split: codec %v does not carry its latent (want one of %v)", b.Name, id, latentCodecs)
	}
	return fmt.Errorf("bundle %s takes images: codec %v does not fit (want one of %v)", b.Name, id, imageCodecs)
}

// NewCodec builds the bundle's codec with the given id: the learned codec
// from its entropy tables, the others with their default options.
func (b *Bundle) NewCodec(id codec.ID) (codec.Codec, error) {
	if err := b.CheckCodec(id); err != nil {
		return nil, err
	}
	switch id {
	case codec.IDLearned:
		return b.Codec()
	case codec.IDRawF32:
		return codec.Raw{}, nil
	case codec.IDInt8Zstd:
		return codec.NewInt8Zstd(), nil
	}
	return codec.NewImage(id, codec.ImageOptions{})
}

// DefaultCodec is the codec a bundle is sent with unless the user picks
// another: the learned codec for a split bundle, PNG for a full one.
func (b *Bundle) DefaultCodec() (codec.Codec, error) {
	if b.Kind == KindSplit {
		return b.NewCodec(codec.IDLearned)
	}
	return b.NewCodec(codec.IDPNG)
}

// GraphFile is one ONNX graph of a bundle.
type GraphFile struct {
	Name string // "encoder", "trunk" or the head's name
	Path string
}

// GraphFiles lists the bundle's graphs in the order they run: the encoder,
// the trunk, the heads.
func (b *Bundle) GraphFiles() []GraphFile {
	var gs []GraphFile
	if b.Encoder != nil {
		gs = append(gs, GraphFile{"encoder", b.Path(b.Encoder.File)})
	}
	if b.Cloud.Trunk != nil {
		gs = append(gs, GraphFile{"trunk", b.Path(b.Cloud.Trunk.File)})
	}
	for _, h := range b.Heads {
		gs = append(gs, GraphFile{h.Name, b.Path(h.File)})
	}
	return gs
}
