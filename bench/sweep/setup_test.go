package sweep

import (
	"testing"
	"time"
)

func TestLinkSet(t *testing.T) {
	tests := []struct {
		set   LinkSet
		names []string
		rtts  []time.Duration
		bad   bool
	}{
		{set: LinkSet{Profiles: "lte"}, names: []string{"lte"}, rtts: []time.Duration{70 * time.Millisecond}},
		{set: LinkSet{Profiles: "lte,3g"}, names: []string{"lte", "3g"}, rtts: []time.Duration{70 * time.Millisecond, 300 * time.Millisecond}},
		{set: LinkSet{Profiles: "lte; rate=2Mbit,delay=10ms"}, names: []string{"lte", "rate=2Mbit,delay=10ms"}, rtts: []time.Duration{70 * time.Millisecond, 20 * time.Millisecond}},
		{set: LinkSet{Profiles: "lte", Rates: "1", UseRates: true, RTT: 40 * time.Millisecond, Loss: "0"},
			names: []string{"lte", "rate=1Mbit,delay=20ms,queue=65536"}, rtts: []time.Duration{70 * time.Millisecond, 40 * time.Millisecond}},
		{set: LinkSet{Rates: "0.5, 1", RTT: 50 * time.Millisecond, Loss: "1%"}, names: []string{"rate=0.5Mbit,delay=25ms,queue=65536,loss=0.01", "rate=1Mbit,delay=25ms,queue=65536,loss=0.01"},
			rtts: []time.Duration{50 * time.Millisecond, 50 * time.Millisecond}},
		{set: LinkSet{Profiles: "nosuchlink"}, bad: true},
		{set: LinkSet{Profiles: "rate=fast"}, bad: true},
		{set: LinkSet{Rates: "1,0", Loss: "0"}, bad: true},
		{set: LinkSet{Rates: "1", Loss: "100%"}, bad: true},
	}
	for _, tt := range tests {
		ls, err := tt.set.Links()
		if tt.bad {
			if err == nil {
				t.Errorf("%+v: accepted", tt.set)
			}
			continue
		}
		if err != nil || len(ls) != len(tt.names) {
			t.Errorf("%+v: %v, %d links", tt.set, err, len(ls))
			continue
		}
		for i, l := range ls {
			if l.Name != tt.names[i] || l.Config.RTT() != tt.rtts[i] {
				t.Errorf("%+v: link %d is %q with RTT %v, want %q, %v", tt.set, i, l.Name, l.Config.RTT(), tt.names[i], tt.rtts[i])
			}
		}
	}
}

func TestParseLossAndQualities(t *testing.T) {
	for in, want := range map[string]float64{"0": 0, "0.01": 0.01, "1%": 0.01, "25%": 0.25} {
		if got, err := ParseLoss(in); err != nil || got != want {
			t.Errorf("ParseLoss(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"1", "-0.1", "100%", "x", ""} {
		if _, err := ParseLoss(in); err == nil {
			t.Errorf("ParseLoss(%q) accepted", in)
		}
	}
	if qs, err := ParseQualities("10, 50,90"); err != nil || len(qs) != 3 || qs[2] != 90 {
		t.Errorf("ParseQualities: %v, %v", qs, err)
	}
	if _, err := ParseQualities("10,101"); err == nil {
		t.Error("quality 101 was accepted")
	}
}

// Link settings come from the user: the parsers return errors, never panic,
// and every link they accept is valid.
func FuzzLinkSet(f *testing.F) {
	for _, s := range []string{"lte,3g", "lte; rate=2Mbit,delay=10ms", "1%", "0.5,1,2", "10,50,90", ";;,", "rate=1e400"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, set := range []LinkSet{{Profiles: s}, {Rates: s, Loss: "0", RTT: time.Millisecond}, {Rates: "1", Loss: s}} {
			if ls, err := set.Links(); err == nil {
				for _, l := range ls {
					if l.Config.Validate() != nil {
						t.Errorf("%+v: invalid link %q accepted", set, l.Name)
					}
				}
			}
		}
		ParseQualities(s)
	})
}
