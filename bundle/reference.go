package bundle

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
)

// Reference holds the parity vectors a bundle ships (reference/index.json):
// for a few test images, PyTorch's input tensor, latent, symbols, rANS
// string, trunk features and head outputs.
type Reference struct {
	Dir    string
	Images []RefImage `json:"images"`
}

// RefImage is the reference of one test image.
type RefImage struct {
	Index   int         `json:"index"`
	Image   string      `json:"image"`
	Tensors []RefTensor `json:"tensors"`
}

// RefTensor names a raw little-endian file of the reference.
type RefTensor struct {
	Name  string `json:"name"`
	DType string `json:"dtype"` // float32, int32 or uint8
	Shape []int  `json:"shape"`
	File  string `json:"file"`
}

// ParseReference decodes reference/index.json.
func ParseReference(data []byte) (*Reference, error) {
	var r Reference
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("reference: %w", err)
	}
	for _, im := range r.Images {
		for _, t := range im.Tensors {
			if !localFile(t.File) || (t.DType != "float32" && t.DType != "int32" && t.DType != "uint8") {
				return nil, fmt.Errorf("reference: tensor %q: file %q, dtype %q", t.Name, t.File, t.DType)
			}
			n := 1
			for _, d := range t.Shape {
				if d < 0 || d > 1<<24 {
					return nil, fmt.Errorf("reference: tensor %q: shape %v", t.Name, t.Shape)
				}
				n *= d
				if n > 1<<26 {
					return nil, fmt.Errorf("reference: tensor %q: shape %v too large", t.Name, t.Shape)
				}
			}
		}
	}
	return &r, nil
}

// Reference loads the bundle's reference vectors.
func (b *Bundle) Reference() (*Reference, error) {
	dir := b.Path("reference")
	data, err := readFile(filepath.Join(dir, "index.json"))
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", b.Name, err)
	}
	r, err := ParseReference(data)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", b.Name, err)
	}
	r.Dir = dir
	return r, nil
}

// Tensor returns the named tensor of a reference image, or nil.
func (im *RefImage) Tensor(name string) *RefTensor {
	for i := range im.Tensors {
		if im.Tensors[i].Name == name {
			return &im.Tensors[i]
		}
	}
	return nil
}

func (r *Reference) raw(t *RefTensor, size int) ([]byte, error) {
	b, err := readFile(filepath.Join(r.Dir, t.File))
	if err != nil {
		return nil, err
	}
	n := size
	for _, d := range t.Shape {
		n *= d
	}
	if len(b) != n {
		return nil, fmt.Errorf("reference %s: %d bytes for %s %v", t.File, len(b), t.DType, t.Shape)
	}
	return b, nil
}

// Float32 reads a float32 tensor.
func (r *Reference) Float32(t *RefTensor) ([]float32, error) {
	if t.DType != "float32" {
		return nil, fmt.Errorf("reference %s is %s, not float32", t.Name, t.DType)
	}
	b, err := r.raw(t, 4)
	if err != nil {
		return nil, err
	}
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out, nil
}

// Int32 reads an int32 tensor.
func (r *Reference) Int32(t *RefTensor) ([]int32, error) {
	if t.DType != "int32" {
		return nil, fmt.Errorf("reference %s is %s, not int32", t.Name, t.DType)
	}
	b, err := r.raw(t, 4)
	if err != nil {
		return nil, err
	}
	out := make([]int32, len(b)/4)
	for i := range out {
		out[i] = int32(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out, nil
}

// Bytes reads a uint8 tensor.
func (r *Reference) Bytes(t *RefTensor) ([]byte, error) {
	if t.DType != "uint8" {
		return nil, fmt.Errorf("reference %s is %s, not uint8", t.Name, t.DType)
	}
	return r.raw(t, 1)
}
