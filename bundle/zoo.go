package bundle

import (
	"fmt"
	"path/filepath"
	"slices"
)

// ZooDir is where the shipped bundles live, relative to the repository root.
const ZooDir = "models/zoo"

// ZooDirs lists the bundle directories (those with a manifest.json) under
// zoo, sorted by name.
func ZooDirs(zoo string) []string {
	manifests, _ := filepath.Glob(filepath.Join(zoo, "*", "manifest.json"))
	slices.Sort(manifests)
	dirs := make([]string, len(manifests))
	for i, m := range manifests {
		dirs[i] = filepath.Dir(m)
	}
	return dirs
}

// FirstSplit loads the first split bundle, by name, under zoo: the default
// bundle of the commands that need one.
func FirstSplit(zoo string) (*Bundle, error) {
	for _, d := range ZooDirs(zoo) {
		b, err := Load(d)
		if err == nil && b.Kind == KindSplit {
			return b, nil
		}
	}
	return nil, fmt.Errorf("no split bundle under %s (run from the repository root, or pass --bundle)", zoo)
}
