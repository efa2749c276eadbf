// Package onnx reads the subset of the ONNX protobuf format that inference
// needs: a model's graph, its nodes with their attributes, the initializers
// and the declared inputs and outputs. It decodes the wire format directly
// (google.golang.org/protobuf/encoding/protowire), so it needs no generated
// code, and every length and count is checked against the bytes at hand:
// truncated or garbage input gives an error, never a panic or a huge
// allocation.
package onnx

import "fmt"

// Data types of TensorProto.DataType that the reader understands.
const (
	TypeFloat   = 1
	TypeUint8   = 2
	TypeInt8    = 3
	TypeUint16  = 4
	TypeInt16   = 5
	TypeInt32   = 6
	TypeInt64   = 7
	TypeString  = 8
	TypeBool    = 9
	TypeFloat16 = 10
	TypeDouble  = 11
	TypeUint32  = 12
	TypeUint64  = 13
)

// Model is a decoded ModelProto.
type Model struct {
	IRVersion int64
	Producer  string
	// Opset maps an operator-set domain ("" for the default ONNX domain) to
	// its version.
	Opset map[string]int64
	Graph *Graph
}

// Graph is a decoded GraphProto.
type Graph struct {
	Name         string
	Nodes        []*Node
	Initializers []*Tensor
	Inputs       []ValueInfo
	Outputs      []ValueInfo
}

// Node is one operator application.
type Node struct {
	Name    string
	OpType  string
	Domain  string
	Inputs  []string // "" marks an omitted optional input
	Outputs []string
	Attrs   map[string]*Attribute
}

// Attribute kinds (AttributeProto.AttributeType).
const (
	AttrFloat   = 1
	AttrInt     = 2
	AttrString  = 3
	AttrTensor  = 4
	AttrGraph   = 5
	AttrFloats  = 6
	AttrInts    = 7
	AttrStrings = 8
)

// Attribute is a decoded AttributeProto. Graph-valued attributes (control
// flow) are recorded by kind only; their subgraphs are not decoded.
type Attribute struct {
	Name    string
	Type    int
	F       float32
	I       int64
	S       []byte
	T       *Tensor
	Floats  []float32
	Ints    []int64
	Strings [][]byte
}

// Tensor is a decoded TensorProto. Floating-point types (float, double,
// float16) are converted to float32 in Float; integer and boolean types to
// int64 in Int. DataType keeps the declared type.
type Tensor struct {
	Name     string
	Dims     []int64
	DataType int
	Float    []float32
	Int      []int64
}

// IsFloat reports whether the tensor's declared type is a floating-point one.
func (t *Tensor) IsFloat() bool { return IsFloatType(t.DataType) }

// IsFloatType reports whether a TensorProto data type is floating point.
func IsFloatType(dt int) bool {
	return dt == TypeFloat || dt == TypeDouble || dt == TypeFloat16
}

// ValueInfo is a declared graph input or output. Shape holds -1 for a
// dimension that is symbolic or unknown; a nil Shape means the rank itself
// is unknown.
type ValueInfo struct {
	Name     string
	ElemType int
	Shape    []int64
}

// TypeName returns the ONNX name of a data type, for error messages.
func TypeName(dt int) string {
	names := map[int]string{TypeFloat: "float", TypeUint8: "uint8", TypeInt8: "int8", TypeUint16: "uint16",
		TypeInt16: "int16", TypeInt32: "int32", TypeInt64: "int64", TypeString: "string", TypeBool: "bool",
		TypeFloat16: "float16", TypeDouble: "double", TypeUint32: "uint32", TypeUint64: "uint64"}
	if n, ok := names[dt]; ok {
		return n
	}
	return fmt.Sprintf("type(%d)", dt)
}
