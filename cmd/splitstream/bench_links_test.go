package main

import (
	"testing"
	"time"
)

func TestParseProfiles(t *testing.T) {
	tests := []struct {
		in    string
		names []string
		rtts  []time.Duration
		bad   bool
	}{
		{in: "lte", names: []string{"lte"}, rtts: []time.Duration{70 * time.Millisecond}},
		{in: "lte,3g", names: []string{"lte", "3g"}, rtts: []time.Duration{70 * time.Millisecond, 300 * time.Millisecond}},
		{in: "lte; rate=2Mbit,delay=10ms", names: []string{"lte", "rate=2Mbit,delay=10ms"}, rtts: []time.Duration{70 * time.Millisecond, 20 * time.Millisecond}},
		{in: "nosuchlink", bad: true},
		{in: "rate=fast", bad: true},
	}
	for _, tt := range tests {
		ls, err := parseProfiles(tt.in)
		if tt.bad {
			if err == nil {
				t.Errorf("%q: accepted", tt.in)
			}
			continue
		}
		if err != nil || len(ls) != len(tt.names) {
			t.Errorf("%q: %v, %d links", tt.in, err, len(ls))
			continue
		}
		for i, l := range ls {
			if l.Name != tt.names[i] || l.Config.RTT() != tt.rtts[i] {
				t.Errorf("%q: link %d is %q with RTT %v, want %q, %v", tt.in, i, l.Name, l.Config.RTT(), tt.names[i], tt.rtts[i])
			}
		}
	}
}

func TestParseLossAndLists(t *testing.T) {
	for in, want := range map[string]float64{"0": 0, "0.01": 0.01, "1%": 0.01, "25%": 0.25} {
		if got, err := parseLoss(in); err != nil || got != want {
			t.Errorf("parseLoss(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"1", "-0.1", "100%", "x"} {
		if _, err := parseLoss(in); err == nil {
			t.Errorf("parseLoss(%q) accepted", in)
		}
	}
	if fs, err := parseFloats("0.5, 1,20"); err != nil || len(fs) != 3 || fs[0] != 0.5 || fs[2] != 20 {
		t.Errorf("parseFloats: %v, %v", fs, err)
	}
	if _, err := parseFloats("1,0"); err == nil {
		t.Error("a zero rate was accepted")
	}
	if _, err := parseInts("10,101"); err == nil {
		t.Error("quality 101 was accepted")
	}
}

// Flag values come from the user: the parsers return errors, never panic.
func FuzzBenchLinksFlags(f *testing.F) {
	for _, s := range []string{"lte,3g", "lte; rate=2Mbit,delay=10ms", "1%", "0.5,1,2", "10,50,90", ";;,", "rate=1e400"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ls, err := parseProfiles(s); err == nil {
			for _, l := range ls {
				if l.Config.Validate() != nil {
					t.Errorf("%q: invalid link %q accepted", s, l.Name)
				}
			}
		}
		if v, err := parseLoss(s); err == nil && !(v >= 0 && v < 1) {
			t.Errorf("parseLoss(%q) = %v", s, v)
		}
		if fs, err := parseFloats(s); err == nil {
			for _, v := range fs {
				if !(v > 0) {
					t.Errorf("parseFloats(%q) gave %v", s, v)
				}
			}
		}
		parseInts(s)
	})
}
