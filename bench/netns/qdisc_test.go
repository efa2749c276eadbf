package netns

import (
	"strings"
	"testing"
	"time"

	"github.com/splitstream/splitstream/bench/link"
)

func TestParseQdiscStats(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want QdiscStats
		ok   bool
	}{
		{"tbf", `[{"kind":"tbf","handle":"801a:","root":true,"refcnt":2,"options":{"rate":625000,"burst":2000,"lat":156800},"bytes":1234,"packets":5,"drops":2,"overlimits":7,"requeues":0,"backlog":100,"qlen":1}]`,
			QdiscStats{Bytes: 1234, Packets: 5, Drops: 2, Overlimits: 7, Backlog: 100}, true},
		{"noqueue only", `[{"kind":"noqueue","handle":"0:","root":true,"refcnt":2,"options":{}}]`, QdiscStats{}, false},
		{"not json", `qdisc tbf 8001: root`, QdiscStats{}, false},
		{"negative", `[{"kind":"tbf","drops":-1}]`, QdiscStats{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseQdiscStats([]byte(tc.in))
			if (err == nil) != tc.ok || got != tc.want {
				t.Errorf("got %+v, %v; want %+v (ok %v)", got, err, tc.want, tc.ok)
			}
		})
	}
}

func FuzzParseQdiscStats(f *testing.F) {
	f.Add([]byte(`[{"kind":"tbf","bytes":1,"packets":1,"drops":0,"overlimits":0,"backlog":0}]`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		parseQdiscStats(b) // must not panic; any error is fine
	})
}

// TestRelayConfig checks the split of a link between tbf and the relay:
// rates and their queues go to tbf, a trace and its queue stay with the
// relay, and so do delays, jitter and loss.
func TestRelayConfig(t *testing.T) {
	tr, err := link.ParseTrace(strings.NewReader("5\n10\n"), "t", 10)
	if err != nil {
		t.Fatal(err)
	}
	cfg := link.Config{
		Up:   link.Direction{Trace: tr, QueuePackets: 20, Delay: 10 * time.Millisecond, Loss: 0.01},
		Down: link.Direction{RateBps: 5e6, BurstBytes: 3000, QueueBytes: 64 << 10, Delay: 15 * time.Millisecond, Jitter: time.Millisecond},
	}
	want := link.Config{
		Up:   cfg.Up,
		Down: link.Direction{Delay: 15 * time.Millisecond, Jitter: time.Millisecond},
	}
	if got := RelayConfig(cfg); got != want {
		t.Errorf("RelayConfig = %+v, want %+v", got, want)
	}
}
