package netns

import "testing"

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
