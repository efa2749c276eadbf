package link

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Parse reads a link from a spec: a profile name, settings, or a profile
// name followed by settings that change it, separated by commas:
//
//	lte
//	rate=5Mbit,delay=20ms,loss=1%
//	3g,up.loss=2%,down.queue=64KiB
//
// A setting is [up.|down.]key=value; without a direction it sets both.
//
//	rate    bits per second, headers counted: 500k, 5Mbit, 1.5Mbps, 1G, 0 (no limit)
//	burst   token bucket depth in bytes: 3000, 16KB, 16KiB
//	delay   one-way delay: 20ms, 1.5ms, 0
//	jitter  spread of the delay: 5ms
//	loss    random loss: 1%, 0.01
//	queue   drop-tail queue in bytes (64KiB, 100000) or packets (50p)
//	reorder let jitter reorder datagrams: reorder, reorder=false
//
// Rates and byte sizes take SI (k = 1000) or binary (KiB = 1024) suffixes.
// Config.String gives back a spec that Parse reads as the same Config.
//
// Trace links come from files, so Parse does not read them: build them with
// LoadTrace and TraceLink.
func Parse(spec string) (Config, error) {
	items := strings.Split(spec, ",")
	var c Config
	for i, item := range items {
		item = strings.TrimSpace(item)
		if item == "" {
			return Config{}, fmt.Errorf("link spec %q: empty item", spec)
		}
		key, value, hasValue := strings.Cut(item, "=")
		if i == 0 && !hasValue && key != "reorder" && !strings.Contains(key, ".") {
			p, err := LookupProfile(key)
			if err != nil {
				return Config{}, fmt.Errorf("link spec %q: %w", spec, err)
			}
			c = p.Link
			continue
		}
		dirs := []*Direction{&c.Up, &c.Down}
		if d, k, ok := strings.Cut(key, "."); ok {
			switch d {
			case "up":
				dirs = dirs[:1]
			case "down":
				dirs = dirs[1:]
			default:
				return Config{}, fmt.Errorf("link spec %q: %q: direction must be up or down", spec, d)
			}
			key = k
		}
		for _, d := range dirs {
			if err := set(d, key, value, hasValue); err != nil {
				return Config{}, fmt.Errorf("link spec %q: %s: %w", spec, item, err)
			}
		}
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("link spec %q: %w", spec, err)
	}
	return c, nil
}

func set(d *Direction, key, value string, hasValue bool) error {
	if !hasValue && key != "reorder" {
		return fmt.Errorf("%q needs a value", key)
	}
	var err error
	switch key {
	case "rate":
		d.RateBps, err = parseScaled(value, rateUnits)
	case "burst":
		d.BurstBytes, err = parseBytes(value)
	case "delay":
		d.Delay, err = parseDuration(value)
	case "jitter":
		d.Jitter, err = parseDuration(value)
	case "loss":
		d.Loss, err = parseLoss(value)
	case "queue":
		if n, ok := strings.CutSuffix(value, "p"); ok {
			d.QueuePackets, err = parseCount(n)
		} else {
			d.QueueBytes, err = parseBytes(value)
		}
	case "reorder":
		d.Reorder = true
		if hasValue {
			d.Reorder, err = strconv.ParseBool(value)
		}
	case "trace":
		return fmt.Errorf("a link spec does not read trace files: load them with link.LoadTrace and build the link with link.TraceLink")
	default:
		return fmt.Errorf("unknown setting %q", key)
	}
	return err
}

type unit struct {
	suffix string
	scale  float64
}

// Longer suffixes first, so that "kbit" is not read as "k" + "bit".
var rateUnits = []unit{
	{"kbit", 1e3}, {"mbit", 1e6}, {"gbit", 1e9}, {"kbps", 1e3}, {"mbps", 1e6}, {"gbps", 1e9},
	{"bit", 1}, {"bps", 1}, {"k", 1e3}, {"m", 1e6}, {"g", 1e9},
}

var byteUnits = []unit{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9}, {"b", 1},
}

// maxBytes bounds byte settings, so that they fit an int everywhere.
const maxBytes = 1 << 40

func parseScaled(s string, units []unit) (float64, error) {
	num, scale := strings.ToLower(s), 1.0
	for _, u := range units {
		if n, ok := strings.CutSuffix(num, u.suffix); ok {
			num, scale = n, u.scale
			break
		}
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	v *= scale
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return 0, fmt.Errorf("%q: must be finite and not negative", s)
	}
	return v, nil
}

func parseBytes(s string) (int, error) {
	v, err := parseScaled(s, byteUnits)
	if err != nil {
		return 0, err
	}
	if v > maxBytes || v != math.Trunc(v) {
		return 0, fmt.Errorf("%q: must be a whole number of bytes up to %d", s, int64(maxBytes))
	}
	return int(v), nil
}

func parseCount(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > maxBytes {
		return 0, fmt.Errorf("%q is not a packet count", s)
	}
	return n, nil
}

func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration (say 20ms)", s)
	}
	return d, nil
}

func parseLoss(s string) (float64, error) {
	scale := 1.0
	if n, ok := strings.CutSuffix(s, "%"); ok {
		s, scale = n, 0.01
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a probability (say 1%% or 0.01)", s)
	}
	return v * scale, nil
}

// String returns a spec that Parse reads back as c: "ideal" for the
// perfect link, else the settings that differ from zero, per direction. A
// direction with a trace shows it as trace=NAME, which Parse does not read
// (see Parse).
func (c Config) String() string {
	var b []string
	for _, d := range []struct {
		name string
		d    Direction
	}{{"up", c.Up}, {"down", c.Down}} {
		add := func(key, value string) { b = append(b, d.name+"."+key+"="+value) }
		if d.d.Trace != nil {
			add("trace", d.d.Trace.Name())
		}
		if d.d.RateBps != 0 {
			add("rate", strconv.FormatFloat(d.d.RateBps, 'g', -1, 64))
		}
		if d.d.BurstBytes != 0 {
			add("burst", strconv.Itoa(d.d.BurstBytes))
		}
		if d.d.Delay != 0 {
			add("delay", d.d.Delay.String())
		}
		if d.d.Jitter != 0 {
			add("jitter", d.d.Jitter.String())
		}
		if d.d.Loss != 0 {
			add("loss", strconv.FormatFloat(d.d.Loss, 'g', -1, 64))
		}
		if d.d.QueueBytes != 0 {
			add("queue", strconv.Itoa(d.d.QueueBytes))
		}
		if d.d.QueuePackets != 0 {
			add("queue", strconv.Itoa(d.d.QueuePackets)+"p")
		}
		if d.d.Reorder {
			add("reorder", "true")
		}
	}
	if len(b) == 0 {
		return "ideal"
	}
	return strings.Join(b, ",")
}
