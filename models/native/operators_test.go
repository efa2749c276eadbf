package native

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestOperatorsAreDocumented holds the operator list of docs/BUNDLE.md (which
// the exporter's checker, train/onnxcheck.py, is tested against) equal to
// what the engine plans.
func TestOperatorsAreDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/BUNDLE.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(doc), "<!-- native-ops -->")
	block, _, ok2 := strings.Cut(block, "<!-- /native-ops -->")
	if !ok || !ok2 {
		t.Fatal("docs/BUNDLE.md has no native-ops block")
	}
	var listed []string
	for _, m := range regexp.MustCompile("`([A-Za-z]+)`").FindAllStringSubmatch(block, -1) {
		listed = append(listed, m[1])
	}
	slices.Sort(listed)
	if got := Operators(); !slices.Equal(got, listed) {
		t.Errorf("the engine plans %v\ndocs/BUNDLE.md lists %v", got, listed)
	}
}
