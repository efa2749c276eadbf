package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckVectors(t *testing.T) {
	good := filepath.Join("..", "..", "entropy", "testdata", "compressai-rans-a.json")
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	// The same file with one hex digit of the first case changed: that case
	// must fail.
	i := strings.Index(string(data), `"encoded_hex": "`) + len(`"encoded_hex": "`)
	flipped := []byte(string(data))
	flipped[i] = map[bool]byte{true: '1', false: '0'}[data[i] == '0']
	tests := []struct {
		name    string
		files   []string
		wantErr string
		wantOut []string
	}{
		{"good", []string{good}, "", []string{"pmf_to_cdf: 24 of 24 match", "case latent_Cx55x55: ok"}},
		{"missing", []string{filepath.Join(dir, "none.json")}, "could not be read", []string{"no such file"}},
		{"not json", []string{write("bad.json", "{")}, "could not be read", []string{"parse test vectors"}},
		{"bad table", []string{write("t.json", `{"precision":16,"cdfs":[[0,5]],"cdf_lengths":[2],"offsets":[0]}`)}, "could not be read", []string{"cdf ends at 5"}},
		{"wrong precision", []string{write("p.json", `{"precision":15}`)}, "could not be read", []string{"precision 15"}},
		{"mismatch", []string{write("m.json", string(flipped))}, "1 check(s) failed", []string{"case empty: FAIL: encode"}},
	}
	for _, tt := range tests {
		var out strings.Builder
		err := runCheckVectors(context.Background(), tt.files, &out)
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("%s: error %v, want %q", tt.name, err, tt.wantErr)
		}
		for _, w := range tt.wantOut {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%s: output lacks %q:\n%s", tt.name, w, out.String())
			}
		}
	}
}
