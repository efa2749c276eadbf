package e2e

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

const module = "github.com/splitstream/splitstream/"

// layers gives each package (by longest matching path prefix) its layer, as
// docs/ARCHITECTURE.md draws them: a package may import packages of lower
// layers and of its own top-level folder, nothing else of the project.
var layers = []struct {
	prefix string
	layer  int
}{
	{"entropy", 0}, {"wire", 0}, {"internal/certs", 0},
	{"codec", 1}, {"models", 1}, {"tasks", 1},
	{"bundle", 2},
	{"tasks/score", 3},
	{"edge", 4}, {"cloud", 4},
	{"pipeline", 5}, {"parity", 5},
	{"bench", 6},
	{"cmd", 7},
	{"internal/e2e", 8}, {"deploy", 8},
}

func layerOf(pkg string) (int, string, bool) {
	best, layer := "", -1
	for _, l := range layers {
		if (pkg == l.prefix || strings.HasPrefix(pkg, l.prefix+"/")) && len(l.prefix) > len(best) {
			best, layer = l.prefix, l.layer
		}
	}
	return layer, best, layer >= 0
}

// goList returns each project package with the project packages it
// imports: directly, or with deps, transitively.
func goList(t *testing.T, deps bool) map[string][]string {
	t.Helper()
	field := ".Imports"
	if deps {
		field = ".Deps"
	}
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	cmd := exec.Command(gobin, "list", "-f", "{{.ImportPath}}{{range "+field+"}} {{.}}{{end}}", module+"...")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	pkgs := map[string][]string{}
	for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], module)
		pkgs[pkg] = nil
		for _, imp := range fields[1:] {
			if p, ok := strings.CutPrefix(imp, module); ok {
				pkgs[pkg] = append(pkgs[pkg], p)
			}
		}
	}
	return pkgs
}

// TestLayers checks that every import points down the layers.
func TestLayers(t *testing.T) {
	for pkg, imports := range goList(t, false) {
		layer, top, ok := layerOf(pkg)
		if !ok {
			t.Errorf("package %s has no layer: add it to docs/ARCHITECTURE.md and this test", pkg)
			continue
		}
		top, _, _ = strings.Cut(top, "/")
		for _, imp := range imports {
			il, _, _ := layerOf(imp)
			sameFolder := imp == top || strings.HasPrefix(imp, top+"/")
			if il >= layer && !sameFolder {
				t.Errorf("%s (layer %d) imports %s (layer %d)", pkg, layer, imp, il)
			}
		}
	}
}

// TestForbiddenDeps checks the rules of docs/ARCHITECTURE.md that matter
// most, on the transitive dependencies.
func TestForbiddenDeps(t *testing.T) {
	rules := []struct {
		pkg       string   // the package and those below it
		forbidden []string // with those below them
		why       string
	}{
		{"edge", []string{"cloud"}, "edge and cloud never import each other"},
		{"cloud", []string{"edge"}, "edge and cloud never import each other"},
		{"models", []string{"codec", "bundle", "wire"}, "engines know no bitstreams and no bundles"},
		{"entropy", []string{"codec", "wire", "models", "bundle", "tasks", "internal"}, "entropy imports nothing of the project"},
		{"wire", []string{"entropy", "codec", "models", "bundle", "tasks", "internal"}, "wire imports nothing of the project"},
		{"", []string{"cmd"}, "nothing imports cmd"},
	}
	under := func(p, prefix string) bool { return prefix == "" || p == prefix || strings.HasPrefix(p, prefix+"/") }
	for pkg, deps := range goList(t, true) {
		for _, r := range rules {
			if !under(pkg, r.pkg) {
				continue
			}
			for _, d := range deps {
				for _, f := range r.forbidden {
					if under(d, f) {
						t.Errorf("%s depends on %s: %s", pkg, d, r.why)
					}
				}
			}
		}
	}
}
