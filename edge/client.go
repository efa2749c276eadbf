// Package edge is splitstream's agent: it reads images, preprocesses them as
// the bundle's manifest says, runs the encoder, entropy-codes the latent,
// sends each as a request on its own stream of one persistent QUIC
// connection, and reports the results with a stage-by-stage latency
// breakdown. The connection is re-established with backoff when it breaks,
// resuming the TLS session with 0-RTT.
package edge

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/splitstream/splitstream/wire"
)

// ClientOptions configure a Client.
type ClientOptions struct {
	// TLS is the client's TLS configuration (see internal/certs). A session
	// cache is added when it has none, for 0-RTT resumption.
	TLS *tls.Config
	// MinBackoff and MaxBackoff bound the wait between reconnection
	// attempts; it doubles from MinBackoff (default 100 ms) up to MaxBackoff
	// (default 5 s), with jitter.
	MinBackoff, MaxBackoff time.Duration
	// DialTimeout bounds one connection attempt. Default 5 s.
	DialTimeout time.Duration
	// Logger logs reconnections. Default slog.Default().
	Logger *slog.Logger
}

// Client sends requests to a cloud server over one persistent QUIC
// connection, one stream per request. It is safe for concurrent use.
type Client struct {
	addr string
	opts ClientOptions
	qcfg *quic.Config

	dial chan struct{} // a one-slot lock around (re)connecting
	mu   sync.Mutex
	conn *quic.Conn

	connects atomic.Int64 // connections established
	resumed  atomic.Int64 // of which resumed with 0-RTT accepted
}

// NewClient returns a client for the server at addr; it connects on first use.
func NewClient(addr string, o ClientOptions) (*Client, error) {
	if o.TLS == nil {
		return nil, errors.New("edge: client needs a TLS configuration")
	}
	o.TLS = o.TLS.Clone()
	if o.TLS.ClientSessionCache == nil {
		o.TLS.ClientSessionCache = tls.NewLRUClientSessionCache(8)
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 100 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Second
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Client{addr: addr, opts: o, dial: make(chan struct{}, 1),
		qcfg: &quic.Config{MaxIdleTimeout: 30 * time.Second, KeepAlivePeriod: 10 * time.Second}}, nil
}

// ConnStats says how often the client connected and how many of those
// connections resumed with 0-RTT.
type ConnStats struct {
	Connects, Resumed0RTT int64
}

// Stats returns the connection counters.
func (c *Client) Stats() ConnStats {
	return ConnStats{Connects: c.connects.Load(), Resumed0RTT: c.resumed.Load()}
}

// Close closes the connection.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil {
		err := c.conn.CloseWithError(0, "edge closing")
		c.conn = nil
		return err
	}
	return nil
}

func alive(conn *quic.Conn) bool { return conn != nil && conn.Context().Err() == nil }

// connection returns the live connection, dialling with backoff until ctx
// ends if there is none.
func (c *Client) connection(ctx context.Context) (*quic.Conn, error) {
	c.mu.Lock()
	conn := c.conn
	c.mu.Unlock()
	if alive(conn) {
		return conn, nil
	}
	select {
	case c.dial <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-c.dial }()
	c.mu.Lock()
	conn = c.conn
	c.mu.Unlock()
	if alive(conn) { // another request reconnected meanwhile
		return conn, nil
	}
	backoff := c.opts.MinBackoff
	for attempt := 1; ; attempt++ {
		dctx, cancel := context.WithTimeout(ctx, c.opts.DialTimeout)
		conn, err := quic.DialAddrEarly(dctx, c.addr, c.opts.TLS, c.qcfg)
		cancel()
		if err == nil {
			c.connects.Add(1)
			c.mu.Lock()
			c.conn = conn
			c.mu.Unlock()
			go c.watch(conn)
			return conn, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("edge: connect to %s: %w", c.addr, ctx.Err())
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		c.opts.Logger.Warn("edge: connect failed; retrying", "addr", c.addr, "attempt", attempt, "in", wait.Round(time.Millisecond), "err", err)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, fmt.Errorf("edge: connect to %s: %w (last error: %v)", c.addr, ctx.Err(), err)
		}
		backoff = min(2*backoff, c.opts.MaxBackoff)
	}
}

// watch records whether a connection's handshake resumed with 0-RTT.
func (c *Client) watch(conn *quic.Conn) {
	select {
	case <-conn.HandshakeComplete():
		if conn.ConnectionState().Used0RTT {
			c.resumed.Add(1)
		}
	case <-conn.Context().Done():
	}
}

// forget drops a connection that failed, so the next request reconnects.
func (c *Client) forget(conn *quic.Conn) {
	c.mu.Lock()
	if c.conn == conn {
		c.conn = nil
	}
	c.mu.Unlock()
}

// Do sends one request and returns the reply. The header's payload length
// and checksum are filled in. A request that fails because the connection
// broke (before any reply) is retried once on a new connection: requests
// are idempotent.
func (c *Client) Do(ctx context.Context, h wire.Header, payload []byte) (*wire.Reply, error) {
	var buf bytes.Buffer
	if err := wire.WriteRequest(&buf, h, payload); err != nil {
		return nil, err
	}
	return c.DoRaw(ctx, buf.Bytes())
}

// DoRaw sends frame, which should be one encoded request, as is and returns
// the reply. Tests use it to send malformed frames.
func (c *Client) DoRaw(ctx context.Context, frame []byte) (*wire.Reply, error) {
	var lastErr error
	for try := 0; try < 2; try++ {
		conn, err := c.connection(ctx)
		if err != nil {
			return nil, err
		}
		r, err := c.roundTrip(ctx, conn, frame)
		if err == nil {
			return r, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			return nil, err
		}
		if errors.Is(err, quic.Err0RTTRejected) {
			if next, nerr := conn.NextConnection(ctx); nerr == nil {
				c.mu.Lock()
				if c.conn == conn {
					c.conn = next
				}
				c.mu.Unlock()
				continue
			}
		}
		if alive(conn) {
			return nil, err // the stream failed, not the connection
		}
		c.forget(conn)
	}
	return nil, lastErr
}

func (c *Client) roundTrip(ctx context.Context, conn *quic.Conn, frame []byte) (*wire.Reply, error) {
	str, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return nil, fmt.Errorf("edge: open stream: %w", err)
	}
	stop := context.AfterFunc(ctx, func() {
		str.CancelWrite(0)
		str.CancelRead(0)
	})
	defer stop()
	if _, err := str.Write(frame); err != nil {
		return nil, fmt.Errorf("edge: send request: %w", err)
	}
	if err := str.Close(); err != nil {
		return nil, fmt.Errorf("edge: send request: %w", err)
	}
	r, err := wire.ReadReply(str)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("edge: %w", ctx.Err())
		}
		return nil, fmt.Errorf("edge: read reply: %w", err)
	}
	return r, nil
}
