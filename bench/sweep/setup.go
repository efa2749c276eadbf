package sweep

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/splitstream/splitstream/bench/link"
	"github.com/splitstream/splitstream/bundle"
)

// LinkSet describes the links of a sweep as a user gives them: named
// profiles or bench/link specs, and constant-rate links.
type LinkSet struct {
	// Profiles are profile names or specs separated by ';' (bare names may
	// also be separated by ',').
	Profiles string
	// Rates are rates in Mbit/s separated by ','; one symmetric link each,
	// with RTT and Loss. Left out when Profiles is set and UseRates is false.
	Rates    string
	UseRates bool
	RTT      time.Duration
	// Loss is the random loss each way of the rate links: a probability or
	// a percentage.
	Loss string
}

// Links parses the set into links, profiles first.
func (s LinkSet) Links() ([]Link, error) {
	var out []Link
	for _, part := range strings.Split(s.Profiles, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		specs := []string{part}
		if !strings.Contains(part, "=") {
			specs = strings.Split(part, ",")
		}
		for _, spec := range specs {
			l, err := ParseLink(strings.TrimSpace(spec))
			if err != nil {
				return nil, err
			}
			out = append(out, l)
		}
	}
	if s.Profiles != "" && !s.UseRates {
		return out, nil
	}
	loss, err := ParseLoss(s.Loss)
	if err != nil {
		return nil, err
	}
	rates, err := parseList(s.Rates, func(v string) (float64, error) {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || !(f > 0) || math.IsInf(f, 0) {
			return 0, fmt.Errorf("rate %q is not a positive number", v)
		}
		return f, nil
	})
	if err != nil {
		return nil, err
	}
	for _, r := range rates {
		l, err := RateLink(r, s.RTT, loss)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, nil
}

// ParseLoss reads a loss probability the way bench/link specs give it (1%
// or 0.01), in [0, 1).
func ParseLoss(s string) (float64, error) {
	c, err := link.Parse("loss=" + strings.TrimSpace(s))
	if err != nil || !(c.Up.Loss < 1) {
		return 0, fmt.Errorf("loss %q: want a probability in [0, 1) or a percentage", s)
	}
	return c.Up.Loss, nil
}

// ParseQualities reads image codec qualities separated by ',', each in 1..100.
func ParseQualities(s string) ([]int, error) {
	return parseList(s, func(v string) (int, error) {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return 0, fmt.Errorf("quality %q is not in 1..100", v)
		}
		return n, nil
	})
}

func parseList[T any](s string, parse func(string) (T, error)) ([]T, error) {
	var out []T
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v == "" {
			continue
		}
		x, err := parse(v)
		if err != nil {
			return nil, err
		}
		out = append(out, x)
	}
	return out, nil
}

// Bundles are the bundles of a sweep, sorted into their roles.
type Bundles struct {
	Full    *bundle.Bundle   // the full model: edge-only and input offload; may be nil
	Feature *bundle.Bundle   // the split bundle whose latent feature offload sends; may be nil
	Split   []*bundle.Bundle // every split bundle, by name
	Names   []string         // every bundle's name, in the order given
}

// LoadBundles loads dirs and sorts them into their roles. feature names the
// feature bundle; empty means the first split bundle by name.
func LoadBundles(dirs []string, feature string) (*Bundles, error) {
	bs := &Bundles{}
	for _, d := range dirs {
		b, err := bundle.Load(d)
		if err != nil {
			return nil, err
		}
		bs.Names = append(bs.Names, b.Name)
		if b.Kind != bundle.KindFull {
			bs.Split = append(bs.Split, b)
			continue
		}
		if bs.Full != nil {
			return nil, fmt.Errorf("two full bundles (%s, %s): give one", bs.Full.Name, b.Name)
		}
		bs.Full = b
	}
	slices.SortFunc(bs.Split, func(a, b *bundle.Bundle) int { return strings.Compare(a.Name, b.Name) })
	for _, b := range bs.Split {
		if feature == "" || b.Name == feature {
			bs.Feature = b
			break
		}
	}
	if feature != "" && bs.Feature == nil {
		return nil, fmt.Errorf("feature bundle %s: no such split bundle", feature)
	}
	return bs, nil
}

// PlanDirs loads the bundles in dirs (every bundle under bundle.ZooDir when
// empty) and plans their strategies, as Plan does, with the image codecs
// at the qualities listed in jpegQ and webpQ. It returns the strategies and
// the bundles' names.
func PlanDirs(dirs []string, feature, jpegQ, webpQ string) ([]Strategy, []string, error) {
	if len(dirs) == 0 {
		if dirs = bundle.ZooDirs(bundle.ZooDir); len(dirs) == 0 {
			return nil, nil, fmt.Errorf("no bundles under %s (run from the repository root, or pass --bundle)", bundle.ZooDir)
		}
	}
	bs, err := LoadBundles(dirs, feature)
	if err != nil {
		return nil, nil, err
	}
	jq, err := ParseQualities(jpegQ)
	if err != nil {
		return nil, nil, fmt.Errorf("jpeg qualities: %w", err)
	}
	wq, err := ParseQualities(webpQ)
	if err != nil {
		return nil, nil, fmt.Errorf("webp qualities: %w", err)
	}
	strategies, err := Plan(bs.Full, bs.Feature, bs.Split, jq, wq)
	return strategies, bs.Names, err
}
