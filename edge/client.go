// Package edge is splitstream's agent: it reads images, preprocesses them as
// the bundle's manifest says, runs the encoder, entropy-codes the latent,
// sends each as a request on its own stream of one persistent QUIC
// connection, and reports the results with a stage-by-stage latency
// breakdown. The connection is re-established with backoff when it breaks,
// resuming the TLS session with 0-RTT, to the next of the server's addresses
// (several may be given, and a name may resolve to several) from a new UDP
// socket, so that a balancer hashing on the client's port picks again.
package edge

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
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
	// IdleTimeout closes the connection when nothing came from the server
	// for this long (the edge sends keep-alives at a third of it), so that
	// requests on a connection to a server that died without a word are
	// sent again on a fresh one. Default 5 s.
	IdleTimeout time.Duration
	// BreakerThreshold is how many connection attempts in a row may fail
	// before the circuit breaker opens: then every request fails at once
	// (ErrCircuitOpen, with the last cause) until BreakerCooldown has
	// passed and one request probes the server again. Default 3.
	BreakerThreshold int
	// BreakerCooldown is how long the breaker stays open. Default 10 s.
	BreakerCooldown time.Duration
	// RetryBudget is how many times one request is sent again on a fresh
	// connection after its connection broke before any reply (a restart,
	// a stateless reset, 0-RTT rejected, a stream reset by a server that
	// shuts down): requests are idempotent. Default 4.
	RetryBudget int
	// Logger logs reconnections. Default slog.Default().
	Logger *slog.Logger
}

// Client sends requests to a cloud server over one persistent QUIC
// connection, one stream per request. It is safe for concurrent use.
//
// The server may have several addresses: the client connects to one at a
// time and, when that connection fails or breaks (the server went away,
// was reset, fell silent), connects to the next, in the order given, each
// name's resolved addresses in turn (IPv4 first); names are resolved again
// after each pass. Every connection starts from a new UDP socket, so it has
// a new source port.
type Client struct {
	addr    string   // as given, for errors
	servers []string // host:port, as given
	opts    ClientOptions
	qcfg    *quic.Config

	dial chan struct{} // a one-slot lock around (re)connecting
	mu   sync.Mutex
	conn *quic.Conn

	connects atomic.Int64 // connections established
	resumed  atomic.Int64 // of which resumed with 0-RTT accepted
	resent   atomic.Int64 // requests sent again after their connection broke
	away     atomic.Int64 // connections the server closed going away

	// The circuit breaker, guarded by dial: consecutive failed attempts,
	// the time it stays open until, and the last failure.
	failures  int
	openUntil time.Time
	lastErr   error
	// The addresses of the current pass and the index of the next one to
	// dial, guarded by dial.
	targets []target
	next    int
}

// target is one address to dial: the host as given (for TLS's server name)
// and a resolved ip:port.
type target struct{ host, addr string }

// ErrPermanent marks a failure that no retry can mend: the server's
// certificate does not verify, the host name does not resolve, the TLS
// handshake was refused. An agent ends its run on one.
var ErrPermanent = errors.New("permanent failure")

// ErrCircuitOpen is the error of a request refused at once because the
// circuit breaker is open.
var ErrCircuitOpen = errors.New("circuit breaker open")

// connBroken reports whether err says the connection itself is gone (a
// stateless reset from a restarted server, an idle timeout, a close),
// which the connection's context may not show yet.
func connBroken(err error) bool {
	var (
		sr   *quic.StatelessResetError
		it   *quic.IdleTimeoutError
		ht   *quic.HandshakeTimeoutError
		ae   *quic.ApplicationError
		terr *quic.TransportError
	)
	return errors.As(err, &sr) || errors.As(err, &it) || errors.As(err, &ht) || errors.As(err, &ae) || errors.As(err, &terr) ||
		errors.Is(err, quic.ErrServerClosed)
}

// permanent reports whether a connection error cannot be mended by retrying.
func permanent(err error) bool {
	var (
		cv   *tls.CertificateVerificationError
		ua   x509.UnknownAuthorityError
		he   x509.HostnameError
		ci   x509.CertificateInvalidError
		dns  *net.DNSError
		terr *quic.TransportError
	)
	switch {
	case errors.As(err, &cv), errors.As(err, &ua), errors.As(err, &he), errors.As(err, &ci):
		return true
	case errors.As(err, &dns):
		return dns.IsNotFound
	case errors.As(err, &terr):
		// A TLS alert (bad certificate, unknown CA, no shared protocol)
		// from either side.
		return terr.ErrorCode.IsCryptoError()
	}
	return false
}

// NewClient returns a client for the server at addr: one or more host:port,
// comma-separated, whose hosts are IP addresses or names (each may resolve
// to several addresses). It connects on first use.
func NewClient(addr string, o ClientOptions) (*Client, error) {
	if o.TLS == nil {
		return nil, errors.New("edge: client needs a TLS configuration")
	}
	servers, err := ParseServers(addr)
	if err != nil {
		return nil, err
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
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 5 * time.Second
	}
	if o.BreakerThreshold <= 0 {
		o.BreakerThreshold = 3
	}
	if o.BreakerCooldown <= 0 {
		o.BreakerCooldown = 10 * time.Second
	}
	if o.RetryBudget <= 0 {
		o.RetryBudget = 4
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Client{addr: addr, servers: servers, opts: o, dial: make(chan struct{}, 1),
		qcfg: &quic.Config{MaxIdleTimeout: o.IdleTimeout, KeepAlivePeriod: o.IdleTimeout / 3}}, nil
}

// ParseServers splits a comma-separated list of host:port server addresses
// and checks each.
func ParseServers(list string) ([]string, error) {
	var servers []string
	for s := range strings.SplitSeq(list, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		host, port, err := net.SplitHostPort(s)
		if err != nil || host == "" || port == "" {
			return nil, fmt.Errorf("edge: server address %q: want host:port", s)
		}
		servers = append(servers, s)
	}
	if len(servers) == 0 {
		return nil, errors.New("edge: no server address")
	}
	return servers, nil
}

// resolve lists the addresses of every server, in order. A name that does
// not resolve is skipped; the error is the last resolution failure, when
// no address is left.
func (c *Client) resolve(ctx context.Context) ([]target, error) {
	var out []target
	var lastErr error
	for _, s := range c.servers {
		host, port, _ := net.SplitHostPort(s) // checked by ParseServers
		if net.ParseIP(host) != nil {
			out = append(out, target{host, s})
			continue
		}
		ips, err := net.DefaultResolver.LookupHost(ctx, host)
		if err != nil {
			c.opts.Logger.Warn("edge: server name does not resolve; skipping it", "server", s, "err", err)
			lastErr = err
			continue
		}
		// IPv4 first, as net.ResolveUDPAddr prefers it: a server on
		// "localhost" often listens on 127.0.0.1 only.
		slices.SortStableFunc(ips, func(a, b string) int { return cmp.Compare(ipv6(a), ipv6(b)) })
		for _, ip := range ips {
			out = append(out, target{host, net.JoinHostPort(ip, port)})
		}
	}
	if len(out) == 0 {
		return nil, lastErr
	}
	return out, nil
}

// ipv6 is 1 for an IPv6 address, 0 otherwise.
func ipv6(ip string) int {
	if strings.Contains(ip, ":") {
		return 1
	}
	return 0
}

// nextTarget returns the address to dial next and whether it is the last
// of its pass; a new pass resolves the names again.
func (c *Client) nextTarget(ctx context.Context) (target, bool, error) {
	if c.next >= len(c.targets) {
		ts, err := c.resolve(ctx)
		if err != nil {
			return target{}, true, err
		}
		c.targets, c.next = ts, 0
	}
	t := c.targets[c.next]
	c.next++
	return t, c.next == len(c.targets), nil
}

// dialTarget connects to t from a new UDP socket (quic.DialAddrEarly makes
// one per connection and closes it with the connection).
func (c *Client) dialTarget(ctx context.Context, t target) (*quic.Conn, error) {
	tlsConf := c.opts.TLS
	if tlsConf.ServerName == "" {
		tlsConf = tlsConf.Clone()
		tlsConf.ServerName = t.host
	}
	dctx, cancel := context.WithTimeout(ctx, c.opts.DialTimeout)
	defer cancel()
	return quic.DialAddrEarly(dctx, t.addr, tlsConf, c.qcfg)
}

// ConnStats says how often the client connected, how many of those
// connections resumed with 0-RTT, how many requests were sent again after
// their connection broke, and how many connections the server closed with
// wire.GoingAway (it was draining).
type ConnStats struct {
	Connects, Resumed0RTT, Resent, GoingAway int64
}

// Stats returns the connection counters.
func (c *Client) Stats() ConnStats {
	return ConnStats{Connects: c.connects.Load(), Resumed0RTT: c.resumed.Load(), Resent: c.resent.Load(), GoingAway: c.away.Load()}
}

// Transport returns the QUIC statistics of the live connection (smoothed
// RTT, congestion window, bytes sent and acknowledged ...) and true, or
// false when there is no live connection.
func (c *Client) Transport() (quic.ConnectionStats, bool) {
	c.mu.Lock()
	conn := c.conn
	c.mu.Unlock()
	if !alive(conn) {
		return quic.ConnectionStats{}, false
	}
	return conn.ConnectionStats(), true
}

// Addr is the server's address, as errors name it.
func (c *Client) Addr() string { return c.addr }

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
	if now := time.Now(); now.Before(c.openUntil) {
		return nil, fmt.Errorf("server %s: %w for %v more after %d failed connection attempts: %v",
			c.addr, ErrCircuitOpen, c.openUntil.Sub(now).Round(100*time.Millisecond), c.failures, c.lastErr)
	}
	backoff := c.opts.MinBackoff
	for {
		t, lastOfPass, err := c.nextTarget(ctx)
		var conn *quic.Conn
		if err == nil {
			conn, err = c.dialTarget(ctx, t)
		}
		if err == nil {
			c.connects.Add(1)
			if c.failures >= c.threshold() {
				c.opts.Logger.Info("edge: server reachable again; circuit breaker closed", "server", t.addr)
			}
			c.failures = 0
			c.mu.Lock()
			c.conn = conn
			c.mu.Unlock()
			go c.watch(conn)
			return conn, nil
		}
		if ctx.Err() != nil {
			if c.lastErr != nil {
				return nil, fmt.Errorf("server %s: connect: %w (last error: %v)", c.addr, ctx.Err(), c.lastErr)
			}
			return nil, fmt.Errorf("server %s: connect: %w", c.addr, ctx.Err())
		}
		if permanent(err) {
			return nil, fmt.Errorf("server %s: %w: %w", c.addr, ErrPermanent, err)
		}
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("no handshake within the dial timeout of %v (no server on the port?): %w", c.opts.DialTimeout, err)
		}
		if t.addr != "" {
			err = fmt.Errorf("%s: %w", t.addr, err)
		}
		c.failures++
		c.lastErr = err
		if c.failures >= c.threshold() {
			c.openUntil = time.Now().Add(c.opts.BreakerCooldown)
			c.opts.Logger.Error("edge: server unreachable; circuit breaker open: requests fail at once", "server", c.addr,
				"attempts", c.failures, "for", c.opts.BreakerCooldown, "err", err)
			return nil, fmt.Errorf("server %s: %w after %d failed connection attempts: %v", c.addr, ErrCircuitOpen, c.failures, err)
		}
		if !lastOfPass { // fail over to the next address at once
			c.opts.Logger.Warn("edge: connect failed; trying the next address", "server", t.addr, "err", err)
			continue
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		c.opts.Logger.Warn("edge: connect failed; retrying", "server", c.addr, "attempt", c.failures, "in", wait.Round(time.Millisecond), "err", err)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, fmt.Errorf("server %s: connect: %w (last error: %v)", c.addr, ctx.Err(), err)
		}
		backoff = min(2*backoff, c.opts.MaxBackoff)
	}
}

// threshold is how many failed attempts in a row open the circuit breaker:
// BreakerThreshold, and at least one per address.
func (c *Client) threshold() int { return max(c.opts.BreakerThreshold, len(c.targets)) }

// watch records whether a connection's handshake resumed with 0-RTT and
// whether the server closed it going away.
func (c *Client) watch(conn *quic.Conn) {
	select {
	case <-conn.HandshakeComplete():
		if conn.ConnectionState().Used0RTT {
			c.resumed.Add(1)
		}
	case <-conn.Context().Done():
	}
	<-conn.Context().Done()
	var ae *quic.ApplicationError
	if errors.As(context.Cause(conn.Context()), &ae) && ae.Remote && ae.ErrorCode == wire.GoingAway {
		c.away.Add(1)
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
// and checksum are filled in. A request whose connection broke before any
// reply is sent again on a fresh connection, up to RetryBudget times
// (requests are idempotent; when 0-RTT is rejected it goes again over the
// 1-RTT connection). A stream the server resets with code 3 (over its
// stream limit) comes back as an overloaded reply.
func (c *Client) Do(ctx context.Context, h wire.Header, payload []byte) (*wire.Reply, error) {
	var buf bytes.Buffer
	if err := wire.WriteRequest(&buf, h, payload); err != nil {
		return nil, err
	}
	return c.DoRaw(ctx, buf.Bytes())
}

// streamOverloaded is the error code of a stream the cloud resets because
// it holds too many (cloud.Options.MaxHandlers).
const streamOverloaded = 3

// DoRaw sends frame, which should be one encoded request, as is and returns
// the reply. Tests use it to send malformed frames.
func (c *Client) DoRaw(ctx context.Context, frame []byte) (*wire.Reply, error) {
	var lastErr error
	for try := 0; try <= c.opts.RetryBudget; try++ {
		conn, err := c.connection(ctx)
		if err != nil {
			return nil, err
		}
		if try > 0 {
			c.resent.Add(1)
		}
		r, err := c.roundTrip(ctx, conn, frame)
		if err == nil {
			return r, nil
		}
		lastErr = fmt.Errorf("server %s: %w", c.addr, err)
		if ctx.Err() != nil {
			return nil, lastErr
		}
		var se *quic.StreamError
		if errors.As(err, &se) && se.Remote && se.ErrorCode == streamOverloaded {
			var id uint64
			if len(frame) >= wire.HeaderSize {
				id = binary.BigEndian.Uint64(frame[12:])
			}
			return &wire.Reply{Status: wire.StatusOverloaded, RequestID: id, Message: "stream reset: the server holds too many streams"}, nil
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
		reset := errors.As(err, &se) && se.Remote
		if connBroken(err) {
			conn.CloseWithError(0, "") // it may not know yet
		}
		if alive(conn) && !reset {
			return nil, lastErr // the stream failed, not the connection
		}
		if reset && alive(conn) {
			// The server reset the stream without a reply, as it does to
			// requests still arriving when it shuts down: give the
			// connection a moment to close before sending it again.
			select {
			case <-conn.Context().Done():
			case <-time.After(100 * time.Millisecond << try):
			case <-ctx.Done():
				return nil, lastErr
			}
		}
		if !alive(conn) {
			c.forget(conn)
		}
	}
	return nil, fmt.Errorf("%w (retry budget of %d spent)", lastErr, c.opts.RetryBudget)
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
	// A request refused from its header gets STOP_SENDING, which can make
	// the write or the close fail, and its reply: read the reply anyway.
	_, werr := str.Write(frame)
	if werr == nil {
		werr = str.Close()
	}
	r, err := wire.ReadReply(str)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("edge: %w", ctx.Err())
		}
		if werr != nil {
			return nil, fmt.Errorf("edge: send request: %w", werr)
		}
		return nil, fmt.Errorf("edge: read reply: %w", err)
	}
	return r, nil
}
