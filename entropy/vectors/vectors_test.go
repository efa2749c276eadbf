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
