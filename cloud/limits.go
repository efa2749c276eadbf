package cloud

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"net"
	"sync"
	"sync/atomic"

	"github.com/quic-go/quic-go"

	"github.com/splitstream/splitstream/codec"
	"github.com/splitstream/splitstream/wire"
)

// Stream error codes the cloud sends with STOP_SENDING and RESET_STREAM
// (docs/PROTOCOL.md).
const (
	// codeRefused: the request was refused from its header (or its payload
	// grew over a limit); the reply on the stream says why, and the rest of
	// the payload is not wanted.
	codeRefused quic.StreamErrorCode = 1
	// codeOverloaded: the cloud holds MaxHandlers streams already; the
	// stream is reset without a reply and may be retried later.
	codeOverloaded quic.StreamErrorCode = 3
)

// payloadLimit is the largest payload the cloud reads for a request with
// codec id to a bundle of shape s: the codec's bound (codec.MaxEncodedLen)
// plus a quarter and 4 KiB of margin, and never more than max.
func PayloadLimit(id codec.ID, s codec.Shape, max uint32) uint32 {
	b := codec.MaxEncodedLen(id, s)
	if b == 0 {
		return 0
	}
	return uint32(min(int64(b)+int64(b)/4+4<<10, int64(max)))
}

// errBudget ends the read of a payload that would take the cloud over its
// in-flight byte budget.
var errBudget = errors.New("in-flight byte budget exhausted")

// budget is a counting semaphore of bytes that never blocks: a request that
// does not fit is refused.
type budget struct {
	limit int64
	used  atomic.Int64
}

func (b *budget) tryAcquire(n int64) bool {
	for {
		u := b.used.Load()
		if u+n > b.limit {
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			return true
		}
	}
}

func (b *budget) release(n int64) { b.used.Add(-n) }

// Payload buffers come from pools by power-of-two capacity, from
// minPoolBuf up to wire.MaxPayload.
const minPoolShift = 14 // 16 KiB

var bufPools [27 - minPoolShift + 1]sync.Pool // 2^14 .. 2^27 (128 MiB > wire.MaxPayload)

func poolClass(n int) int { return max(bits.Len(uint(max(n, 1)-1)), minPoolShift) - minPoolShift }

// getBuf returns an empty buffer of capacity at least n from the pools.
func getBuf(n int) []byte {
	c := poolClass(n)
	if p, ok := bufPools[c].Get().(*[]byte); ok {
		return (*p)[:0]
	}
	return make([]byte, 0, 1<<(c+minPoolShift))
}

// putBuf gives a buffer from getBuf back to its pool.
func putBuf(b []byte) {
	if cap(b) == 0 {
		return
	}
	c := poolClass(cap(b))
	if c >= len(bufPools) || cap(b) != 1<<(c+minPoolShift) {
		return
	}
	b = b[:0]
	bufPools[c].Put(&b)
}

// payloadReader reads payloads into pooled buffers charged to the server's
// byte budget as they grow.
type payloadReader struct {
	budget *budget
	held   int64 // bytes of budget this request holds
	buf    []byte
}

// grow implements wire.GrowFunc.
func (p *payloadReader) grow(b []byte, n int) ([]byte, error) {
	c := int64(1) << (poolClass(n) + minPoolShift)
	if !p.budget.tryAcquire(c) {
		return b, errBudget
	}
	nb := append(getBuf(n), b...)
	p.held += c
	p.free(b)
	p.buf = nb
	return nb, nil
}

// free gives a buffer back to its pool and its bytes back to the budget.
func (p *payloadReader) free(b []byte) {
	if cap(b) == 0 {
		return
	}
	p.budget.release(int64(cap(b)))
	p.held -= int64(cap(b))
	putBuf(b)
}

// done gives back everything the request holds.
func (p *payloadReader) done() {
	p.free(p.buf)
	p.buf = nil
}

// connLimiter bounds the connections the server holds, in total and per
// remote IP address. It refuses a connection in quic.Transport.ConnContext,
// before the connection is set up, and counts it until it closes.
type connLimiter struct {
	max, perAddr int
	onChange     func(total int)

	mu     sync.Mutex
	total  int
	byAddr map[string]int
}

var (
	errTooManyConns   = errors.New("connection limit reached")
	errTooManyPerAddr = errors.New("per-address connection limit reached")
)

// admit implements quic.Transport.ConnContext.
func (l *connLimiter) admit(ctx context.Context, info *quic.ClientInfo) (context.Context, error) {
	host := info.RemoteAddr.String()
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	l.mu.Lock()
	switch {
	case l.total >= l.max:
		l.mu.Unlock()
		return nil, errTooManyConns
	case l.byAddr[host] >= l.perAddr:
		l.mu.Unlock()
		return nil, fmt.Errorf("%w (%s)", errTooManyPerAddr, host)
	}
	l.total++
	l.byAddr[host]++
	total := l.total
	l.mu.Unlock()
	if l.onChange != nil {
		l.onChange(total)
	}
	context.AfterFunc(ctx, func() {
		l.mu.Lock()
		l.total--
		if l.byAddr[host]--; l.byAddr[host] == 0 {
			delete(l.byAddr, host)
		}
		total := l.total
		l.mu.Unlock()
		if l.onChange != nil {
			l.onChange(total)
		}
	})
	return ctx, nil
}

// headerLimit is what the cloud checks in a request header before it
// reads a byte of the payload: the bundle, codec, tasks, shape and the
// payload length against the bundle's limit. It returns nil when the
// request may be read.
func (s *Server) checkHeader(h *wire.Header) *wire.Reply {
	refuse := func(st wire.Status, format string, args ...any) *wire.Reply {
		return &wire.Reply{Status: st, RequestID: h.RequestID, Message: limit(fmt.Sprintf(format, args...))}
	}
	m := s.models[h.Bundle]
	if m == nil {
		return refuse(wire.StatusUnknownBundle, "no bundle with hash sha256:%x on this server", h.Bundle)
	}
	id := codec.ID(h.Codec)
	if err := m.Accept(id, shapeOf(*h), h.Tasks); err != nil {
		return refuse(wire.StatusBadRequest, "%v", err)
	}
	if lim := PayloadLimit(id, m.Bundle.Shape(), s.opts.MaxPayload); h.PayloadLen > lim {
		return refuse(wire.StatusBadRequest, "payload length %d over the limit %d for codec %v of bundle %s", h.PayloadLen, lim, id, m.Bundle.Name)
	}
	return nil
}
