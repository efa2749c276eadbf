package link

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Limits on the relay's clients.
const (
	// MaxSessions is the number of client addresses a relay serves at once;
	// datagrams from further clients are dropped (Stats.Rejected).
	MaxSessions = 1024
	// SessionIdleTimeout is how long a client address may stay silent in
	// both directions before the relay forgets it and closes its socket.
	SessionIdleTimeout = 2 * time.Minute
)

// maxDatagram is the largest UDP payload the relay reads.
const maxDatagram = 65535

// DirStats counts what happened to the datagrams of one direction.
type DirStats struct {
	Received   uint64 // datagrams that entered the direction
	Forwarded  uint64 // datagrams sent on
	Bytes      uint64 // UDP payload bytes sent on
	WireBytes  uint64 // Bytes plus the IP and UDP headers the rate limit counts
	Lost       uint64 // datagrams dropped at random (Direction.Loss)
	Dropped    uint64 // datagrams dropped because the queue was full
	SendErrors uint64 // datagrams whose send failed
	// How late datagrams left the delay line (before the send system
	// call), summed over all and the largest: a check that the relay kept
	// up with its timing.
	LateTotal, LateMax time.Duration
}

// MeanLate is the mean lateness of the datagrams released so far.
func (s DirStats) MeanLate() time.Duration {
	if n := s.Forwarded + s.SendErrors; n > 0 {
		return s.LateTotal / time.Duration(n)
	}
	return 0
}

// Stats is a snapshot of a relay's counters. Datagrams still on their way
// are in Received but in none of the outcomes.
type Stats struct {
	Up, Down DirStats
	Sessions int    // client addresses served now
	Rejected uint64 // datagrams dropped because MaxSessions was reached
}

// Option configures a relay.
type Option func(*options)

type options struct {
	sockets     func(func() error) error
	log         *slog.Logger
	idleTimeout time.Duration
}

// WithSocketFunc makes the relay create each of its sockets inside run(fn),
// for example to create them in another network namespace: sockets keep the
// namespace they were created in. run must call fn synchronously.
func WithSocketFunc(run func(fn func() error) error) Option {
	return func(o *options) { o.sockets = run }
}

// WithLogger sets the logger for the relay's debug messages (sessions opened
// and closed). The default discards them.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.log = l }
}

// Relay forwards UDP datagrams between clients and one target through an
// emulated link. It is safe for concurrent use.
type Relay struct {
	cfg    Config
	opts   options
	ln     *net.UDPConn
	target *net.UDPAddr
	start  time.Time
	up     *pipe
	down   *pipe

	mu       sync.Mutex
	sessions map[netip.AddrPort]*session
	closed   bool
	rejected atomic.Uint64

	done      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// session is one client address and the socket that speaks to the target
// on its behalf, so the target sees one peer per client.
type session struct {
	client netip.AddrPort
	conn   *net.UDPConn
	last   atomic.Int64 // relay clock (ns) of the last datagram either way
}

// NewRelay starts a relay that listens on listenAddr ("127.0.0.1:0" picks a
// free port) and forwards what it receives to targetAddr through the link
// cfg; replies from the target go back through the link to the client.
// seed seeds the random loss and jitter, so a run with the same seed and the
// same arrivals drops and delays the same datagrams. The relay stops when
// ctx is done or Close is called.
func NewRelay(ctx context.Context, listenAddr, targetAddr string, cfg Config, seed uint64, opts ...Option) (*Relay, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("link relay: %w", err)
	}
	o := options{idleTimeout: SessionIdleTimeout, sockets: func(fn func() error) error { return fn() }}
	for _, opt := range opts {
		opt(&o)
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	target, err := net.ResolveUDPAddr("udp", targetAddr)
	if err != nil {
		return nil, fmt.Errorf("link relay: target %q: %w", targetAddr, err)
	}
	laddr, err := net.ResolveUDPAddr("udp", listenAddr)
	if err != nil {
		return nil, fmt.Errorf("link relay: listen address %q: %w", listenAddr, err)
	}
	var ln *net.UDPConn
	if err := o.sockets(func() (err error) {
		if ln, err = net.ListenUDP("udp", laddr); err == nil {
			growBuffers(ln)
		}
		return err
	}); err != nil {
		return nil, fmt.Errorf("link relay: listen on %s: %w", listenAddr, err)
	}
	header := HeaderIPv6
	if target.IP.To4() != nil {
		header = HeaderIPv4
	}
	r := &Relay{
		cfg:      cfg,
		opts:     o,
		ln:       ln,
		target:   target,
		start:    time.Now(),
		up:       newPipe(cfg.Up, header, seed, 1),
		down:     newPipe(cfg.Down, header, seed, 2),
		sessions: make(map[netip.AddrPort]*session),
		done:     make(chan struct{}),
	}
	r.wg.Add(4)
	go func() { defer r.wg.Done(); r.up.run(r.done, r.clock, r.sendUp) }()
	go func() { defer r.wg.Done(); r.down.run(r.done, r.clock, r.sendDown) }()
	go func() { defer r.wg.Done(); r.readClients() }()
	go func() { defer r.wg.Done(); r.housekeep(ctx) }()
	return r, nil
}

// Addr is the address clients send to.
func (r *Relay) Addr() net.Addr { return r.ln.LocalAddr() }

// Config is the link the relay emulates.
func (r *Relay) Config() Config { return r.cfg }

// Start is when the relay started: time 0 of its clock and of its traces.
func (r *Relay) Start() time.Time { return r.start }

// Stats returns the relay's counters so far.
func (r *Relay) Stats() Stats {
	s := Stats{Up: r.up.snapshot(), Down: r.down.snapshot(), Rejected: r.rejected.Load()}
	r.mu.Lock()
	s.Sessions = len(r.sessions)
	r.mu.Unlock()
	return s
}

// Close stops the relay, closes its sockets and drops the datagrams still on
// their way. It waits for the relay's goroutines and is safe to call twice.
func (r *Relay) Close() error {
	var err error
	r.closeOnce.Do(func() {
		close(r.done)
		r.mu.Lock()
		r.closed = true
		err = r.ln.Close()
		for _, s := range r.sessions {
			s.conn.Close()
		}
		r.mu.Unlock()
		r.wg.Wait()
	})
	return err
}

func (r *Relay) clock() time.Duration { return time.Since(r.start) }

// housekeep closes idle sessions, and the relay when ctx is done.
func (r *Relay) housekeep(ctx context.Context) {
	tick := time.NewTicker(r.opts.idleTimeout / 4)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			go r.Close() // Close waits for this goroutine
			return
		case <-r.done:
			return
		case <-tick.C:
			idle := r.clock() - r.opts.idleTimeout
			r.mu.Lock()
			for a, s := range r.sessions {
				if time.Duration(s.last.Load()) < idle {
					delete(r.sessions, a)
					s.conn.Close()
					r.opts.log.Debug("link relay: session idle, closed", "client", a)
				}
			}
			r.mu.Unlock()
		}
	}
}

// readClients reads datagrams from clients into the up direction.
func (r *Relay) readClients() {
	buf := make([]byte, maxDatagram)
	for {
		n, from, err := r.ln.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			r.opts.log.Debug("link relay: read from clients", "err", err)
			continue
		}
		now := r.clock()
		s := r.session(from.Addr().Unmap(), from.Port())
		if s == nil {
			continue
		}
		s.last.Store(int64(now))
		r.up.enqueue(now, &packet{data: append([]byte(nil), buf[:n]...), sess: s})
	}
}

// session returns the session of a client, opening it if it is new; nil if
// the relay is closed, full, or cannot open a socket to the target.
func (r *Relay) session(addr netip.Addr, port uint16) *session {
	client := netip.AddrPortFrom(addr, port)
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.sessions[client]; ok || r.closed {
		return s
	}
	if len(r.sessions) >= MaxSessions {
		r.rejected.Add(1)
		return nil
	}
	var conn *net.UDPConn
	if err := r.opts.sockets(func() (err error) {
		if conn, err = net.DialUDP("udp", nil, r.target); err == nil {
			growBuffers(conn)
		}
		return err
	}); err != nil {
		r.rejected.Add(1)
		r.opts.log.Warn("link relay: open socket to target", "target", r.target, "err", err)
		return nil
	}
	s := &session{client: client, conn: conn}
	r.sessions[client] = s
	r.wg.Add(1)
	go func() { defer r.wg.Done(); r.readTarget(s) }()
	r.opts.log.Debug("link relay: session opened", "client", client)
	return s
}

// readTarget reads the target's replies to one client into the down
// direction, until the session's socket is closed.
func (r *Relay) readTarget(s *session) {
	buf := make([]byte, maxDatagram)
	for {
		n, err := s.conn.Read(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// A connected UDP socket reports ICMP errors (say, the target
			// is not listening yet) on a later read; they are not fatal.
			continue
		}
		now := r.clock()
		s.last.Store(int64(now))
		r.down.enqueue(now, &packet{data: append([]byte(nil), buf[:n]...), to: s.client})
	}
}

func (r *Relay) sendUp(pk *packet) {
	_, err := pk.sess.conn.Write(pk.data)
	r.up.counted(len(pk.data), err == nil)
}

func (r *Relay) sendDown(pk *packet) {
	_, err := r.ln.WriteToUDPAddrPort(pk.data, pk.to)
	r.down.counted(len(pk.data), err == nil)
}
