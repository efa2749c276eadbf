package onnx

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// MaxElements bounds the element count of one tensor, so that a corrupt
// dims field cannot ask for an absurd allocation.
const MaxElements = 1 << 28

// Decode parses a serialized ModelProto.
func Decode(b []byte) (*Model, error) {
	m := &Model{Opset: map[string]int64{}}
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		switch num {
		case 1:
			m.IRVersion = int64(x)
		case 2:
			m.Producer = string(v)
		case 7:
			if typ != protowire.BytesType {
				return errWire
			}
			g, err := decodeGraph(v)
			if err != nil {
				return fmt.Errorf("graph: %w", err)
			}
			m.Graph = g
		case 8:
			if typ != protowire.BytesType {
				return errWire
			}
			var dom string
			var ver int64
			if err := fields(v, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
				switch num {
				case 1:
					dom = string(v)
				case 2:
					ver = int64(x)
				}
				return nil
			}); err != nil {
				return fmt.Errorf("opset_import: %w", err)
			}
			m.Opset[dom] = ver
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("onnx: decode model: %w", err)
	}
	if m.Graph == nil {
		return nil, errors.New("onnx: decode model: no graph (not an ONNX model file?)")
	}
	return m, nil
}

var errWire = errors.New("field has the wrong wire type")

// fields calls f for each field of the message b. For varint and fixed
// fields x holds the value; for length-delimited ones v holds the bytes.
func fields(b []byte, f func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("bad tag: %w", protowire.ParseError(n))
		}
		b = b[n:]
		var v []byte
		var x uint64
		switch typ {
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var y uint32
			y, n = protowire.ConsumeFixed32(b)
			x = uint64(y)
		case protowire.Fixed64Type:
			x, n = protowire.ConsumeFixed64(b)
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return fmt.Errorf("field %d: %w", num, protowire.ParseError(n))
		}
		b = b[n:]
		if err := f(num, typ, v, x); err != nil {
			return err
		}
	}
	return nil
}

func decodeGraph(b []byte) (*Graph, error) {
	g := &Graph{}
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		if num == 1 || num == 5 || num == 11 || num == 12 {
			if typ != protowire.BytesType {
				return fmt.Errorf("field %d: %w", num, errWire)
			}
		}
		switch num {
		case 1:
			n, err := decodeNode(v)
			if err != nil {
				return fmt.Errorf("node %d: %w", len(g.Nodes), err)
			}
			g.Nodes = append(g.Nodes, n)
		case 2:
			g.Name = string(v)
		case 5:
			t, err := decodeTensor(v)
			if err != nil {
				return fmt.Errorf("initializer %d: %w", len(g.Initializers), err)
			}
			g.Initializers = append(g.Initializers, t)
		case 11, 12:
			vi, err := decodeValueInfo(v)
			if err != nil {
				return fmt.Errorf("value info: %w", err)
			}
			if num == 11 {
				g.Inputs = append(g.Inputs, vi)
			} else {
				g.Outputs = append(g.Outputs, vi)
			}
		case 15:
			return errors.New("sparse initializers are not supported")
		}
		return nil
	})
	return g, err
}

func decodeNode(b []byte) (*Node, error) {
	n := &Node{Attrs: map[string]*Attribute{}}
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		switch num {
		case 1:
			n.Inputs = append(n.Inputs, string(v))
		case 2:
			n.Outputs = append(n.Outputs, string(v))
		case 3:
			n.Name = string(v)
		case 4:
			n.OpType = string(v)
		case 7:
			n.Domain = string(v)
		case 5:
			if typ != protowire.BytesType {
				return errWire
			}
			a, err := decodeAttr(v)
			if err != nil {
				return fmt.Errorf("attribute: %w", err)
			}
			n.Attrs[a.Name] = a
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", n.OpType, n.Name, err)
	}
	return n, nil
}

func decodeAttr(b []byte) (*Attribute, error) {
	a := &Attribute{}
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		switch num {
		case 1:
			a.Name = string(v)
		case 2:
			if typ != protowire.Fixed32Type {
				return errWire
			}
			a.F = math.Float32frombits(uint32(x))
		case 3:
			a.I = int64(x)
		case 4:
			a.S = v
		case 5:
			if typ != protowire.BytesType {
				return errWire
			}
			t, err := decodeTensor(v)
			if err != nil {
				return err
			}
			a.T = t
		case 7:
			fs, err := appendFloats(a.Floats, typ, v, x)
			if err != nil {
				return err
			}
			a.Floats = fs
		case 8:
			is, err := appendInts(a.Ints, typ, v, x)
			if err != nil {
				return err
			}
			a.Ints = is
		case 9:
			a.Strings = append(a.Strings, v)
		case 20:
			a.Type = int(x)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%q: %w", a.Name, err)
	}
	return a, nil
}

// appendFloats appends one float field, packed or not.
func appendFloats(dst []float32, typ protowire.Type, v []byte, x uint64) ([]float32, error) {
	switch typ {
	case protowire.Fixed32Type:
		return append(dst, math.Float32frombits(uint32(x))), nil
	case protowire.BytesType:
		if len(v)%4 != 0 {
			return nil, errors.New("packed floats: length not a multiple of 4")
		}
		for i := 0; i < len(v); i += 4 {
			dst = append(dst, math.Float32frombits(binary.LittleEndian.Uint32(v[i:])))
		}
		return dst, nil
	}
	return nil, errWire
}

// appendDoubles appends one double field, packed or not, as float32.
func appendDoubles(dst []float32, typ protowire.Type, v []byte, x uint64) ([]float32, error) {
	switch typ {
	case protowire.Fixed64Type:
		return append(dst, float32(math.Float64frombits(x))), nil
	case protowire.BytesType:
		if len(v)%8 != 0 {
			return nil, errors.New("packed doubles: length not a multiple of 8")
		}
		for i := 0; i < len(v); i += 8 {
			dst = append(dst, float32(math.Float64frombits(binary.LittleEndian.Uint64(v[i:]))))
		}
		return dst, nil
	}
	return nil, errWire
}

// appendInts appends one varint field, packed or not.
func appendInts(dst []int64, typ protowire.Type, v []byte, x uint64) ([]int64, error) {
	switch typ {
	case protowire.VarintType:
		return append(dst, int64(x)), nil
	case protowire.BytesType:
		for len(v) > 0 {
			y, n := protowire.ConsumeVarint(v)
			if n < 0 {
				return nil, fmt.Errorf("packed varints: %w", protowire.ParseError(n))
			}
			dst = append(dst, int64(y))
			v = v[n:]
		}
		return dst, nil
	}
	return nil, errWire
}

func decodeValueInfo(b []byte) (ValueInfo, error) {
	var vi ValueInfo
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		switch num {
		case 1:
			vi.Name = string(v)
		case 2: // TypeProto
			return fields(v, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
				if num != 1 { // only tensor_type
					return nil
				}
				return fields(v, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
					switch num {
					case 1:
						vi.ElemType = int(x)
					case 2: // TensorShapeProto
						vi.Shape = []int64{}
						return fields(v, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
							if num != 1 {
								return nil
							}
							d := int64(-1)
							err := fields(v, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
								if num == 1 && typ == protowire.VarintType && int64(x) >= 0 {
									d = int64(x)
								}
								return nil
							})
							vi.Shape = append(vi.Shape, d)
							return err
						})
					}
					return nil
				})
			})
		}
		return nil
	})
	if err != nil {
		return vi, fmt.Errorf("%q: %w", vi.Name, err)
	}
	return vi, nil
}

func decodeTensor(b []byte) (*Tensor, error) {
	t := &Tensor{}
	var raw []byte
	var hasRaw, external bool
	var f32 []float32
	var i64 []int64
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		var err error
		switch num {
		case 1:
			t.Dims, err = appendInts(t.Dims, typ, v, x)
		case 2:
			t.DataType = int(x)
		case 4:
			f32, err = appendFloats(f32, typ, v, x)
		case 5, 7, 11:
			i64, err = appendInts(i64, typ, v, x)
		case 10:
			f32, err = appendDoubles(f32, typ, v, x)
		case 8:
			t.Name = string(v)
		case 9:
			raw, hasRaw = v, true
		case 14:
			external = x == 1
		case 3:
			err = errors.New("segmented tensors are not supported")
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	if external {
		return nil, fmt.Errorf("tensor %q: external data is not supported (save the model with its weights inside)", t.Name)
	}
	n := int64(1)
	for _, d := range t.Dims {
		if d < 0 {
			return nil, fmt.Errorf("tensor %q: negative dimension %d", t.Name, d)
		}
		if d > 0 && n > MaxElements/d {
			return nil, fmt.Errorf("tensor %q: dims %v exceed %d elements", t.Name, t.Dims, MaxElements)
		}
		n *= d
	}
	if hasRaw {
		if err := t.fromRaw(raw, int(n)); err != nil {
			return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
		}
		return t, nil
	}
	switch t.DataType {
	case TypeFloat, TypeDouble:
		t.Float = f32
		if t.Float == nil {
			t.Float = []float32{}
		}
	case TypeFloat16:
		t.Float = make([]float32, len(i64))
		for i, h := range i64 {
			t.Float[i] = halfToFloat(uint16(h))
		}
	case TypeInt8, TypeUint8, TypeInt16, TypeUint16, TypeInt32, TypeInt64, TypeBool, TypeUint32, TypeUint64:
		t.Int = i64
		if t.DataType == TypeInt32 {
			for i, v := range t.Int {
				t.Int[i] = int64(int32(v))
			}
		}
		if t.Int == nil {
			t.Int = []int64{}
		}
	default:
		return nil, fmt.Errorf("tensor %q: data type %s is not supported", t.Name, TypeName(t.DataType))
	}
	if got := t.Len(); int64(got) != n {
		return nil, fmt.Errorf("tensor %q: dims %v need %d elements, data holds %d", t.Name, t.Dims, n, got)
	}
	return t, nil
}

// Len returns the number of elements the tensor holds.
func (t *Tensor) Len() int {
	if t.Float != nil {
		return len(t.Float)
	}
	return len(t.Int)
}

func (t *Tensor) fromRaw(raw []byte, n int) error {
	size := map[int]int{TypeFloat: 4, TypeDouble: 8, TypeFloat16: 2, TypeInt8: 1, TypeUint8: 1, TypeBool: 1,
		TypeInt16: 2, TypeUint16: 2, TypeInt32: 4, TypeUint32: 4, TypeInt64: 8, TypeUint64: 8}[t.DataType]
	if size == 0 {
		return fmt.Errorf("data type %s is not supported", TypeName(t.DataType))
	}
	if len(raw) != n*size {
		return fmt.Errorf("dims %v need %d bytes of %s, raw data holds %d", t.Dims, n*size, TypeName(t.DataType), len(raw))
	}
	le := binary.LittleEndian
	if IsFloatType(t.DataType) {
		t.Float = make([]float32, n)
		for i := range t.Float {
			switch t.DataType {
			case TypeFloat:
				t.Float[i] = math.Float32frombits(le.Uint32(raw[4*i:]))
			case TypeDouble:
				t.Float[i] = float32(math.Float64frombits(le.Uint64(raw[8*i:])))
			default:
				t.Float[i] = halfToFloat(le.Uint16(raw[2*i:]))
			}
		}
		return nil
	}
	t.Int = make([]int64, n)
	for i := range t.Int {
		switch t.DataType {
		case TypeInt8:
			t.Int[i] = int64(int8(raw[i]))
		case TypeUint8, TypeBool:
			t.Int[i] = int64(raw[i])
		case TypeInt16:
			t.Int[i] = int64(int16(le.Uint16(raw[2*i:])))
		case TypeUint16:
			t.Int[i] = int64(le.Uint16(raw[2*i:]))
		case TypeInt32:
			t.Int[i] = int64(int32(le.Uint32(raw[4*i:])))
		case TypeUint32:
			t.Int[i] = int64(le.Uint32(raw[4*i:]))
		default:
			t.Int[i] = int64(le.Uint64(raw[8*i:]))
		}
	}
	return nil
}

// halfToFloat converts an IEEE 754 binary16 value to float32.
func halfToFloat(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := int32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp == 0:
		if mant == 0 {
			return math.Float32frombits(sign)
		}
		f := float32(mant) / 1024 / 16384
		if sign != 0 {
			f = -f
		}
		return f
	}
	return math.Float32frombits(sign | uint32(exp-15+127)<<23 | mant<<13)
}
