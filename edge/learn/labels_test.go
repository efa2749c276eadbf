package learn

import (
	"strings"
	"testing"
)

func TestParseUserLabels(t *testing.T) {
	u, err := ParseUserLabels([]byte(`{"cam0/0001.png": "Coat", "0002.png": "Umbrella"}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, want string }{
		{"cam0/0001.png", "Coat"},
		{"/data/other/0002.png", "Umbrella"},
		{"0002.png", "Umbrella"},
	} {
		if got, ok := u.Lookup(tc.path); !ok || got != tc.want {
			t.Errorf("Lookup(%q) = %q, %v; want %q", tc.path, got, ok, tc.want)
		}
	}
	if _, ok := u.Lookup("0001.png"); ok {
		t.Error("0001.png matched the entry for cam0/0001.png")
	}
	for _, bad := range []string{
		``, `null`, `[]`, `{"a.png": 3}`, `{"a.png": ""}`, `{"": "Coat"}`,
		`{"a.png": "` + strings.Repeat("x", maxLabel+1) + `"}`,
	} {
		if _, err := ParseUserLabels([]byte(bad)); err == nil {
			t.Errorf("%.40q accepted", bad)
		}
	}
}

// FuzzParseUserLabels checks that the parser never panics and that what
// it accepts holds only valid entries.
func FuzzParseUserLabels(f *testing.F) {
	f.Add([]byte(`{"cam0/0001.png": "Coat", "0002.png": "Umbrella"}`))
	f.Add([]byte(`{"a": "b", "a": "c"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		u, err := ParseUserLabels(data)
		if err != nil {
			return
		}
		for k, v := range u {
			if k == "" || len(k) > maxImageKey || checkLabel(v) != nil {
				t.Fatalf("accepted entry %q: %q", k, v)
			}
		}
	})
}
