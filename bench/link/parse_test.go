package link

import (
	"errors"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	lte, err := LookupProfile("lte")
	if err != nil {
		t.Fatal(err)
	}
	ms := time.Millisecond
	tests := []struct {
		spec string
		want Config
	}{
		{"ideal", Config{}},
		{"lte", lte.Link},
		{"rate=5Mbit,delay=20ms,loss=1%", Config{
			Up:   Direction{RateBps: 5e6, Delay: 20 * ms, Loss: 0.01},
			Down: Direction{RateBps: 5e6, Delay: 20 * ms, Loss: 0.01}}},
		{" up.rate=500k , down.rate=1.5Mbps,up.queue=50p,down.queue=64KiB,burst=3kB,jitter=2ms,reorder", Config{
			Up:   Direction{RateBps: 500e3, QueuePackets: 50, BurstBytes: 3000, Jitter: 2 * ms, Reorder: true},
			Down: Direction{RateBps: 1.5e6, QueueBytes: 64 << 10, BurstBytes: 3000, Jitter: 2 * ms, Reorder: true}}},
		{"lte,up.loss=0.02,down.reorder=false", func() Config {
			c := lte.Link
			c.Up.Loss = 0.02
			return c
		}()},
		{"rate=1G,queue=1MB,up.rate=0", Config{
			Up:   Direction{QueueBytes: 1e6},
			Down: Direction{RateBps: 1e9, QueueBytes: 1e6}}},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			got, err := Parse(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
			back, err := Parse(got.String())
			if err != nil || back != got {
				t.Errorf("String %q reads back as %+v, %v", got.String(), back, err)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, spec := range []string{
		"", "nosuchprofile", "lte,", "rate", "rate=fast", "rate=-1", "rate=NaN", "rate=Inf",
		"rate=10", // below 1 kbit/s
		"loss=100%", "loss=1.5", "loss=-0.1", "delay=20", "delay=-1ms", "jitter=2h",
		"queue=1.5", "queue=-3", "queue=xp", "burst=1e300", "side.rate=1M", "colour=blue",
		"reorder=maybe", "rate=5M,lte",
	} {
		if c, err := Parse(spec); err == nil {
			t.Errorf("Parse(%q) = %+v, want an error", spec, c)
		}
	}
	if _, err := Parse("nosuchprofile"); !errors.Is(err, ErrUnknownProfile) {
		t.Errorf("unknown profile error %v does not wrap ErrUnknownProfile", err)
	}
}

func TestProfiles(t *testing.T) {
	seen := map[string]bool{}
	for _, p := range Profiles() {
		if seen[p.Name] {
			t.Errorf("profile %q twice", p.Name)
		}
		seen[p.Name] = true
		if err := p.Link.Validate(); err != nil {
			t.Errorf("profile %q: %v", p.Name, err)
		}
		if p.Summary == "" || p.Source == "" {
			t.Errorf("profile %q lacks a summary or a source", p.Name)
		}
		got, err := Parse(p.Name)
		if err != nil || got != p.Link {
			t.Errorf("Parse(%q) = %+v, %v", p.Name, got, err)
		}
	}
}

// FuzzParse checks that Parse never panics, accepts only valid links, and
// that what it accepts survives a trip through String.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"lte", "rate=5Mbit,delay=20ms,loss=1%", "3g,up.queue=20p,reorder",
		"up.rate=1e+06,down.burst=3000", "queue=64KiB,jitter=1.5ms", "rate=0x1p20"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		c, err := Parse(spec)
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse(%q) accepted an invalid link: %v", spec, err)
		}
		back, err := Parse(c.String())
		if err != nil || back != c {
			t.Fatalf("Parse(%q) = %+v; its String %q reads back as %+v, %v", spec, c, c.String(), back, err)
		}
	})
}
