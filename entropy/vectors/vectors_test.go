package vectors

import (
	"os"
	"testing"
)

const vectorFile = "../testdata/compressai-rans-a.json"

func TestCompressAIVectors(t *testing.T) {
	data, err := os.ReadFile(vectorFile)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.PMFToCDF) == 0 || len(f.Cases) == 0 {
		t.Fatalf("%s: %d pmf_to_cdf entries and %d cases; want some of each", vectorFile, len(f.PMFToCDF), len(f.Cases))
	}
	for _, r := range append(f.CheckCDFs(), f.CheckCases()...) {
		if !r.OK {
			t.Errorf("%s: %s", r.Name, r.Detail)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ name, json string }{
		{"empty", ``},
		{"not an object", `[]`},
		{"trailing data", `{"precision":16,"cdfs":[[0,65536]],"cdf_lengths":[2],"offsets":[0]} {}`},
		{"trailing bracket", `{"precision":16,"cdfs":[[0,65536]],"cdf_lengths":[2],"offsets":[0]}]`},
		{"precision", `{"precision":12,"cdfs":[[0,4096]],"cdf_lengths":[2],"offsets":[0]}`},
		{"no table", `{"precision":16}`},
		{"bad row", `{"precision":16,"cdfs":[[0,3,3,65536]],"cdf_lengths":[4],"offsets":[0]}`},
		{"int32 overflow", `{"precision":16,"cdfs":[[0,65536]],"cdf_lengths":[2],"offsets":[4294967296]}`},
		{"lengths differ", `{"precision":16,"cdfs":[[0,65536]],"cdf_lengths":[2],"offsets":[0],"cases":[{"symbols":[1],"indexes":[],"encoded_hex":""}]}`},
		{"bad hex", `{"precision":16,"cdfs":[[0,65536]],"cdf_lengths":[2],"offsets":[0],"cases":[{"symbols":[],"indexes":[],"encoded_hex":"0g"}]}`},
	}
	for _, tt := range tests {
		if _, err := Parse([]byte(tt.json)); err == nil {
			t.Errorf("%s: Parse accepted it", tt.name)
		}
	}
	if _, err := Parse([]byte(`{"precision":16,"cdfs":[[0,65536]],"cdf_lengths":[2],"offsets":[0]}` + "\n")); err != nil {
		t.Errorf("minimal file with a trailing newline: %v", err)
	}
}

// FuzzParse parses arbitrary bytes as a test-vector file and, when that
// succeeds, runs every check: nothing may panic.
func FuzzParse(f *testing.F) {
	data, err := os.ReadFile(vectorFile)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add([]byte(`{"precision":16,"pmf_to_cdf":[{"pmf":[0.5,0.5],"cdf":[0,32768,65536]}],"cdfs":[[0,3,65536]],"cdf_lengths":[3],"offsets":[-1],"cases":[{"name":"x","symbols":[5,-1],"indexes":[0,0],"encoded_hex":"0000008000000000"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := Parse(data)
		if err != nil {
			return
		}
		v.CheckCDFs()
		v.CheckCases()
	})
}
