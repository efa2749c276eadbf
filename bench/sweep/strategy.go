// Package sweep runs the bench's strategies (edge only, input offload,
// feature offload, the learned codec) end to end through the real edge,
// codec, QUIC and cloud code, over emulated links, and measures accuracy,
// bytes per image and latency with its breakdown.
package sweep

import (
	"errors"
	"fmt"
	"time"

	"github.com/splitstream/splitstream/bench/link"
	"github.com/splitstream/splitstream/bundle"
	"github.com/splitstream/splitstream/codec"
	"github.com/splitstream/splitstream/edge"
)

// Strategy kinds.
const (
	KindEdge    = "edge"    // the full model on the edge, nothing sent
	KindInput   = "input"   // the image, coded, to the full model in the cloud
	KindFeature = "feature" // the split bundle's latent, without the learned codec
	KindLearned = "learned" // the split bundle's latent with its learned codec
)

// Strategy is one way to get an image's task results.
type Strategy struct {
	Name   string
	Kind   string
	Bundle *bundle.Bundle
	// Codec is what the edge sends with; nil for edge-only and for the
	// learned codec (the bundle's own).
	Codec codec.Codec
}

// Plan lists the strategies: edge-only (full model on the edge), PNG, JPEG
// and WebP at the given qualities (to the full bundle), raw-f32 and
// int8-zstd latents of the feature bundle, and the learned codec of every
// split bundle. full or feature may be nil to leave their strategies out.
func Plan(full *bundle.Bundle, feature *bundle.Bundle, split []*bundle.Bundle, jpegQ, webpQ []int) ([]Strategy, error) {
	var out []Strategy
	if full != nil {
		if full.Kind != bundle.KindFull {
			return nil, fmt.Errorf("bundle %s is %s, the input strategies need a full bundle", full.Name, full.Kind)
		}
		out = append(out, Strategy{Name: "edge-only", Kind: KindEdge, Bundle: full})
		img := []struct {
			id codec.ID
			qs []int
		}{{codec.IDPNG, []int{0}}, {codec.IDJPEG, jpegQ}, {codec.IDWebP, webpQ}}
		for _, c := range img {
			if err := full.CheckCodec(c.id); err != nil {
				return nil, err
			}
			for _, q := range c.qs {
				cd, err := codec.NewImage(c.id, codec.ImageOptions{Quality: q})
				if err != nil {
					return nil, err
				}
				out = append(out, Strategy{Name: edge.ImagePointName(c.id, q), Kind: KindInput, Bundle: full, Codec: cd})
			}
		}
	}
	if feature != nil {
		for _, id := range []codec.ID{codec.IDRawF32, codec.IDInt8Zstd} {
			cd, err := feature.NewCodec(id)
			if err != nil {
				return nil, fmt.Errorf("feature offload: %w", err)
			}
			out = append(out, Strategy{Name: id.String(), Kind: KindFeature, Bundle: feature, Codec: cd})
		}
	}
	for _, b := range split {
		if err := b.CheckCodec(codec.IDLearned); err != nil {
			return nil, err
		}
		out = append(out, Strategy{Name: edge.LearnedPointName(b), Kind: KindLearned, Bundle: b})
	}
	if len(out) == 0 {
		return nil, errors.New("no strategies: give a full bundle, split bundles, or both")
	}
	return out, nil
}

// Link is one emulated link of a sweep.
type Link struct {
	Name   string // a bench/link spec that Parse reads back
	Config link.Config
}

// RateLink is a symmetric link of rate Mbit/s each way, the given round
// trip (half each way) and loss each way, with a drop-tail queue of two
// bandwidth-delay products, at least 64 KiB.
func RateLink(mbps float64, rtt time.Duration, loss float64) (Link, error) {
	bdp := int(mbps * 1e6 / 8 * rtt.Seconds())
	d := link.Direction{RateBps: mbps * 1e6, Delay: rtt / 2, Loss: loss, QueueBytes: max(64<<10, 2*bdp)}
	cfg := link.Config{Up: d, Down: d}
	if err := cfg.Validate(); err != nil {
		return Link{}, fmt.Errorf("link %g Mbit/s: %w", mbps, err)
	}
	name := fmt.Sprintf("rate=%gMbit,delay=%v,queue=%d", mbps, d.Delay, d.QueueBytes)
	if loss > 0 {
		name += fmt.Sprintf(",loss=%g", loss)
	}
	return Link{Name: name, Config: cfg}, nil
}

// ParseLink reads a profile name or spec (bench/link syntax).
func ParseLink(spec string) (Link, error) {
	cfg, err := link.Parse(spec)
	if err != nil {
		return Link{}, err
	}
	return Link{Name: spec, Config: cfg}, nil
}
