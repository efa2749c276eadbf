package bundle

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// ContentHash computes a bundle directory's content hash as docs/BUNDLE.md
// defines it: the SHA-256 of sha256sum-style lines ("<hex>  <path>\n") for
// every regular file, sorted by path, with manifest.json hashed with its
// "hash" value emptied.
func ContentHash(dir string) ([32]byte, error) {
	var lines []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		h := sha256.New()
		if rel == "manifest.json" {
			b, err := readFile(path)
			if err != nil {
				return err
			}
			h.Write(blankHash(b))
		} else {
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				return err
			}
		}
		lines = append(lines, hex.EncodeToString(h.Sum(nil))+"  "+rel+"\n")
		return nil
	})
	if err != nil {
		return [32]byte{}, fmt.Errorf("content hash of %s: %w", dir, err)
	}
	// Sorting the lines sorts by path: the hex digests all have one length,
	// so compare the paths themselves.
	slices.SortFunc(lines, func(a, b string) int { return bytes.Compare([]byte(a[66:]), []byte(b[66:])) })
	sum := sha256.New()
	for _, l := range lines {
		io.WriteString(sum, l)
	}
	var out [32]byte
	copy(out[:], sum.Sum(nil))
	return out, nil
}

// blankHash returns manifest bytes with the value of the "hash" field removed.
func blankHash(b []byte) []byte {
	key := []byte(`"hash": "`)
	i := bytes.Index(b, key)
	if i < 0 {
		return b
	}
	start := i + len(key)
	end := bytes.IndexByte(b[start:], '"')
	if end < 0 {
		return b
	}
	return slices.Concat(b[:start], b[start+end:])
}
