package cloud

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/splitstream/splitstream/codec"
	"github.com/splitstream/splitstream/wire"
)

func TestPayloadLimit(t *testing.T) {
	s := codec.Shape{C: 24, H: 28, W: 28}
	if got, want := PayloadLimit(codec.IDLearned, s, wire.MaxPayload), uint32(6*s.Len()+16+(6*s.Len()+16)/4+4096); got != want {
		t.Errorf("learned limit %d, want %d", got, want)
	}
	if got := PayloadLimit(codec.IDRawF32, s, 1000); got != 1000 {
		t.Errorf("limit %d above the server's cap 1000", got)
	}
	if PayloadLimit(codec.ID(42), s, wire.MaxPayload) != 0 {
		t.Error("unknown codec has a limit")
	}
}

func TestBufferPools(t *testing.T) {
	for _, n := range []int{0, 1, 16 << 10, 16<<10 + 1, 5 << 20} {
		b := getBuf(n)
		if cap(b) < n || len(b) != 0 || cap(b)&(cap(b)-1) != 0 {
			t.Errorf("getBuf(%d): len %d cap %d", n, len(b), cap(b))
		}
		putBuf(b)
	}
	putBuf(make([]byte, 0, 1000)) // not from the pools: dropped
	if b := getBuf(1000); cap(b) != 16<<10 {
		t.Errorf("a foreign buffer came back from the pool: cap %d", cap(b))
	}
}

// trickle returns at most n bytes per Read.
type trickle struct {
	r io.Reader
	n int
}

func (t *trickle) Read(p []byte) (int, error) { return t.r.Read(p[:min(len(p), t.n)]) }

// FuzzPayloadBudget reads payloads of any claimed length and chunking
// through payloadReaders that share one budget: the budget is never
// exceeded, a refusal is errBudget, and every byte comes back once the
// requests are done.
func FuzzPayloadBudget(f *testing.F) {
	f.Add(uint32(100), uint32(40<<10), uint16(7), []byte("some payload"))
	f.Add(uint32(1<<20), uint32(16<<10), uint16(1000), bytes.Repeat([]byte{1}, 70000))
	f.Fuzz(func(t *testing.T, claim, limit uint32, chunk uint16, data []byte) {
		claim %= 4 << 20
		b := &budget{limit: int64(limit % (8 << 20))}
		var readers []*payloadReader
		for range 3 {
			pr := &payloadReader{budget: b}
			readers = append(readers, pr)
			h := wire.Header{PayloadLen: claim, PayloadCRC: wire.Checksum(data)}
			got, err := wire.ReadPayload(&trickle{bytes.NewReader(data), int(chunk) + 1}, &h, nil, pr.grow)
			if u := b.used.Load(); u > b.limit || u != sumHeld(readers) {
				t.Fatalf("budget used %d, limit %d, held %d", u, b.limit, sumHeld(readers))
			}
			if err == nil && (len(got) != int(claim) || !bytes.Equal(got, data)) {
				t.Fatalf("accepted %d bytes for a claim of %d", len(got), claim)
			}
			if err != nil && !errors.Is(err, errBudget) && !errors.Is(err, wire.ErrMalformed) {
				t.Fatalf("unexpected error %v", err)
			}
		}
		for _, pr := range readers {
			pr.done()
		}
		if u := b.used.Load(); u != 0 {
			t.Fatalf("%d bytes of budget not given back", u)
		}
	})
}

func sumHeld(rs []*payloadReader) int64 {
	var n int64
	for _, r := range rs {
		n += r.held
	}
	return n
}
