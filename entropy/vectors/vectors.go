// Package vectors reads rANS test-vector files produced with CompressAI and
// checks package entropy against them: the quantized CDFs that
// pmf_to_quantized_cdf returns, the bytes encode_with_indexes writes and the
// symbols decode_with_indexes reads back.
package vectors

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/splitstream/splitstream/entropy"
)

// File is a parsed test-vector file: a JSON object whose fields are tagged
// below. cdfs, cdf_lengths and offsets are an EntropyBottleneck's quantized
// CDF table; encoded_hex is the hex of CompressAI's encoded bytes.
type File struct {
	Generator string     `json:"generator"`
	Seed      int64      `json:"seed"`
	Precision int        `json:"precision"`
	PMFToCDF  []PMFEntry `json:"pmf_to_cdf"`
	CDFs      [][]int32  `json:"cdfs"`
	Lengths   []int32    `json:"cdf_lengths"`
	Offsets   []int32    `json:"offsets"`
	Cases     []Case     `json:"cases"`

	// Table is the entropy table built from CDFs, Lengths and Offsets.
	Table *entropy.Table `json:"-"`
}

// PMFEntry is one pmf_to_quantized_cdf check: the pmf (tail mass last) and
// the CDF CompressAI returned for it.
type PMFEntry struct {
	PMF []float32 `json:"pmf"`
	CDF []int32   `json:"cdf"`
}

// Case is one coded symbol stream.
type Case struct {
	Name       string  `json:"name"`
	Symbols    []int32 `json:"symbols"`
	Indexes    []int32 `json:"indexes"`
	EncodedHex string  `json:"encoded_hex"`

	// Encoded is EncodedHex decoded.
	Encoded []byte `json:"-"`
}

// Parse reads a test-vector file and validates it: the precision is the
// coder's, the table is valid, and every case has as many indexes as symbols
// and well-formed hex.
func Parse(data []byte) (*File, error) {
	var f File
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("parse test vectors: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("parse test vectors: data after the JSON object")
	}
	if f.Precision != entropy.Precision {
		return nil, fmt.Errorf("parse test vectors: precision %d, the coder supports %d", f.Precision, entropy.Precision)
	}
	t, err := entropy.NewTable(f.CDFs, f.Lengths, f.Offsets)
	if err != nil {
		return nil, fmt.Errorf("parse test vectors: %w", err)
	}
	f.Table = t
	for i := range f.Cases {
		c := &f.Cases[i]
		if len(c.Symbols) != len(c.Indexes) {
			return nil, fmt.Errorf("parse test vectors: case %d (%q): %d symbols but %d indexes", i, c.Name, len(c.Symbols), len(c.Indexes))
		}
		if c.Encoded, err = hex.DecodeString(c.EncodedHex); err != nil {
			return nil, fmt.Errorf("parse test vectors: case %d (%q): encoded_hex: %w", i, c.Name, err)
		}
	}
	return &f, nil
}

// Result is the outcome of one check.
type Result struct {
	Name string // "pmf_to_cdf[3]" or the case name
	OK   bool
	// Detail says what was checked, or what did not match.
	Detail string
}

// CheckCDFs recomputes every pmf_to_cdf entry and compares it with the
// expected CDF, one result per entry.
func (f *File) CheckCDFs() []Result {
	res := make([]Result, len(f.PMFToCDF))
	for i, e := range f.PMFToCDF {
		r := Result{Name: fmt.Sprintf("pmf_to_cdf[%d]", i)}
		got, err := entropy.PMFToQuantizedCDF(e.PMF, f.Precision)
		switch {
		case err != nil:
			r.Detail = err.Error()
		case !slices.Equal(got, e.CDF):
			r.Detail = "cdf differs: " + firstDiff(got, e.CDF)
		default:
			r.OK = true
			r.Detail = fmt.Sprintf("%d entries match", len(got))
		}
		res[i] = r
	}
	return res
}

// CheckCases encodes every case and compares the bytes, then decodes the
// expected bytes and compares the symbols, one result per case.
func (f *File) CheckCases() []Result {
	var enc entropy.Encoder
	var dec entropy.Decoder
	res := make([]Result, len(f.Cases))
	for i, c := range f.Cases {
		var encErr, decErr string
		got, err := enc.Encode(nil, c.Symbols, c.Indexes, f.Table)
		switch {
		case err != nil:
			encErr = "encode: " + err.Error()
		case !bytes.Equal(got, c.Encoded):
			encErr = fmt.Sprintf("encode: %d bytes, want %d: %s", len(got), len(c.Encoded), firstDiff(got, c.Encoded))
		}
		syms, err := dec.Decode(nil, c.Encoded, c.Indexes, f.Table)
		switch {
		case err != nil:
			decErr = "decode: " + err.Error()
		case !slices.Equal(syms, c.Symbols):
			decErr = "decode: symbols differ: " + firstDiff(syms, c.Symbols)
		}
		r := Result{Name: c.Name, OK: encErr == "" && decErr == ""}
		if r.OK {
			r.Detail = fmt.Sprintf("%d symbols, %d bytes: encode and decode match", len(c.Symbols), len(c.Encoded))
		} else {
			r.Detail = strings.TrimPrefix(encErr+"; "+decErr, "; ")
			r.Detail = strings.TrimSuffix(r.Detail, "; ")
		}
		res[i] = r
	}
	return res
}

// firstDiff describes where got and want first differ.
func firstDiff[E comparable](got, want []E) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("first difference at %d: got %v, want %v", i, got[i], want[i])
		}
	}
	return fmt.Sprintf("length %d, want %d", len(got), len(want))
}

// CheckFile checks the vector file at path, writes one line per failed CDF,
// a summary of the CDF checks and one line per case to w, and returns how
// many checks failed. An error means the file could not be read or parsed.
func CheckFile(path string, w io.Writer) (failed int, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	f, err := Parse(data)
	if err != nil {
		return 0, err
	}
	if len(f.PMFToCDF) == 0 && len(f.Cases) == 0 {
		return 0, errors.New("no pmf_to_cdf entries and no cases")
	}
	cdfs := f.CheckCDFs()
	for _, r := range cdfs {
		if !r.OK {
			fmt.Fprintf(w, "%s: %s: FAIL: %s\n", path, r.Name, r.Detail)
			failed++
		}
	}
	fmt.Fprintf(w, "%s: pmf_to_cdf: %d of %d match\n", path, len(cdfs)-failed, len(cdfs))
	for _, r := range f.CheckCases() {
		status := "ok"
		if !r.OK {
			status = "FAIL"
			failed++
		}
		fmt.Fprintf(w, "%s: case %s: %s: %s\n", path, r.Name, status, r.Detail)
	}
	return failed, nil
}

// CheckFiles checks every file as CheckFile does, writing to w, and returns
// an error that counts the files that could not be read and the checks
// that failed, or nil when everything matched.
func CheckFiles(paths []string, w io.Writer) error {
	failed, bad := 0, 0
	for _, path := range paths {
		n, err := CheckFile(path, w)
		if err != nil {
			fmt.Fprintf(w, "%s: FAIL: %v\n", path, err)
			bad++
		}
		failed += n
	}
	if bad > 0 || failed > 0 {
		return fmt.Errorf("%d file(s) could not be read, %d check(s) failed", bad, failed)
	}
	return nil
}
