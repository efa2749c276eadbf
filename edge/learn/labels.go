package learn

import (
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
)

// UserLabels are labels a user gives to images (the edge's --labels FILE):
// a JSON object mapping an image to a class name, e.g.
//
//	{"cam0/0001.png": "Coat", "0002.png": "Umbrella"}
//
// A name the cloud's head lacks becomes a new local class (LearnLabel).
type UserLabels map[string]string

// Bounds of a user labels file: its size (which bounds what parsing it
// allocates) and the length of one image name.
const (
	MaxLabelsFile = 16 << 20
	maxImageKey   = 4096
)

// ParseUserLabels parses a user labels file.
func ParseUserLabels(data []byte) (UserLabels, error) {
	if len(data) > MaxLabelsFile {
		return nil, fmt.Errorf("learn: labels: %d bytes, over %d", len(data), MaxLabelsFile)
	}
	var u UserLabels
	if err := json.Unmarshal(data, &u); err != nil {
		return nil, fmt.Errorf("learn: labels: %w", err)
	}
	if u == nil {
		return nil, fmt.Errorf("learn: labels: want a JSON object of image -> class")
	}
	for k, v := range u {
		if k == "" || len(k) > maxImageKey {
			return nil, fmt.Errorf("learn: labels: image name of %d bytes", len(k))
		}
		if err := checkLabel(v); err != nil {
			return nil, fmt.Errorf("learn: labels: image %q: %w", k, err)
		}
	}
	return u, nil
}

// LoadUserLabels reads and parses a user labels file.
func LoadUserLabels(file string) (UserLabels, error) {
	st, err := os.Stat(file)
	if err != nil {
		return nil, fmt.Errorf("learn: labels: %w", err)
	}
	if st.Size() > MaxLabelsFile {
		return nil, fmt.Errorf("learn: labels: %s is %d bytes, over %d", file, st.Size(), MaxLabelsFile)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("learn: labels: %w", err)
	}
	return ParseUserLabels(data)
}

// Lookup returns the class the user gave to the image at path p: the entry
// for p itself, or else for its base name.
func (u UserLabels) Lookup(p string) (string, bool) {
	if c, ok := u[p]; ok {
		return c, true
	}
	if c, ok := u[filepath.ToSlash(p)]; ok {
		return c, true
	}
	c, ok := u[path.Base(filepath.ToSlash(p))]
	return c, ok
}
