// Package cloud is splitstream's server: it accepts QUIC connections from
// edge agents, reads one request per stream (docs/PROTOCOL.md), decodes the
// latent, runs the requested task heads of the request's bundle with dynamic
// batching, and answers with the results and its stage timings. A bounded
// queue answers "overloaded" rather than growing; Prometheus metrics and a
// health check are served over HTTP; shutdown finishes in-flight requests.
package cloud

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/quic-go/quic-go"

	"github.com/splitstream/splitstream/codec"
	"github.com/splitstream/splitstream/wire"
)

// Options configure a Server. The zero value gives the documented defaults;
// docs/PROTOCOL.md lists the limits and what a peer sees when it hits one.
//
// Memory is bounded by these options, not by what peers claim: payload
// bytes in flight by MaxInflightBytes; connections by MaxConns (each holds
// at most ConnReceiveWindow bytes of QUIC buffers and MaxStreams streams);
// goroutines serving streams by MaxHandlers.
type Options struct {
	// QueueSize is how many requests may wait for a worker; a request that
	// finds the queue full is answered "overloaded" at once, with a
	// retry-after hint from the queue's state. Default 64.
	QueueSize int
	// Workers is how many requests are decoded and run at once. Default
	// one per CPU. With dynamic batching (a model whose MaxBatch is above
	// 1) the server takes up to Workers x MaxBatch requests from the queue
	// at once, so that batches can form.
	Workers int
	// MaxPayload caps a request's payload. Default 16 MiB. The limit a
	// request meets is lower: the largest payload its codec can produce
	// for its bundle's shape (codec.MaxEncodedLen) plus a quarter and
	// 4 KiB, checked from the header before any payload is read.
	MaxPayload uint32
	// MaxInflightBytes bounds the payload bytes held by all requests
	// being read, waiting or running. A payload's buffer grows as its
	// bytes arrive and is charged to this budget; a request that would
	// exceed it is answered "overloaded". Default 256 MiB.
	MaxInflightBytes int64
	// HeaderTimeout bounds the time from a stream's opening to its whole
	// 64-byte header. Default 5 s.
	HeaderTimeout time.Duration
	// ReadTimeout bounds the time to receive a whole request (and to write
	// its reply). Default 10 s.
	ReadTimeout time.Duration
	// IdleTimeout closes a connection that carried no packet for this long
	// (QUIC's max_idle_timeout; the edge sends keep-alives). Default 30 s.
	IdleTimeout time.Duration
	// ShutdownTimeout bounds how long shutdown waits for in-flight
	// requests before closing connections. Default 30 s.
	ShutdownTimeout time.Duration
	// MaxStreams is how many requests one connection may have open at
	// once (QUIC's stream limit). Default 128.
	MaxStreams int64
	// MaxHandlers bounds the streams being served at once over all
	// connections; a stream over it is reset with error code 3
	// (overloaded) without a reply. Default 4096.
	MaxHandlers int64
	// MaxConns bounds the connections the server holds; more are refused
	// during the handshake (CONNECTION_REFUSED). Default 1024.
	MaxConns int
	// MaxConnsPerAddr bounds the connections from one IP address.
	// Default 128.
	MaxConnsPerAddr int
	// StreamReceiveWindow and ConnReceiveWindow bound QUIC's flow-control
	// windows (bytes a peer may send that the server has not read yet),
	// per stream and per connection. Defaults 256 KiB and 1 MiB.
	StreamReceiveWindow, ConnReceiveWindow uint64
	// TicketKeys, when set, are the TLS session-ticket keys (the first
	// encrypts, all decrypt), so that sessions and 0-RTT resume across
	// restarts and replicas that share them (see LoadTicketKeys). Default:
	// keys of this process only.
	TicketKeys [][32]byte
	// AdminAddr is a TCP address for the admin endpoints (see Admin):
	// /livez, /readyz, /healthz and /metrics, bound before the server
	// serves. Empty: none.
	AdminAddr string
	// DrainDelay is how long the server keeps serving, with /readyz
	// failing, after it is told to stop: time for a load balancer to stop
	// sending it new connections. Default 0.
	DrainDelay time.Duration
	// ConnectionIDs generates the server's connection IDs; a
	// quiclb.Generator puts the replica's server ID in each, so that a
	// QUIC-aware balancer routes a migrated connection back to it.
	// Default: quic-go's random IDs.
	ConnectionIDs quic.ConnectionIDGenerator
	// Registry receives the server's metrics. Default: a new registry.
	Registry *prometheus.Registry
	// Logger logs connections and failures. Default: slog.Default().
	Logger *slog.Logger
}

// DefaultOptions returns the options with every default filled in, for a
// caller that shows or overrides them (the command's flags).
func DefaultOptions() Options {
	var o Options
	o.setDefaults()
	return o
}

func (o *Options) setDefaults() {
	if o.QueueSize <= 0 {
		o.QueueSize = 64
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.MaxPayload == 0 {
		o.MaxPayload = 16 << 20
	}
	if o.MaxInflightBytes <= 0 {
		o.MaxInflightBytes = 256 << 20
	}
	if o.HeaderTimeout <= 0 {
		o.HeaderTimeout = 5 * time.Second
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 10 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 30 * time.Second
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 30 * time.Second
	}
	if o.MaxStreams <= 0 {
		o.MaxStreams = 128
	}
	if o.MaxHandlers <= 0 {
		o.MaxHandlers = 4096
	}
	if o.MaxConns <= 0 {
		o.MaxConns = 1024
	}
	if o.MaxConnsPerAddr <= 0 {
		o.MaxConnsPerAddr = 128
	}
	if o.StreamReceiveWindow == 0 {
		o.StreamReceiveWindow = 256 << 10
	}
	if o.ConnReceiveWindow == 0 {
		o.ConnReceiveWindow = 1 << 20
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Server serves the heads of one or more bundles.
type Server struct {
	opts    Options
	models  map[[wire.HashSize]byte]*Model
	metrics *metrics
	queue   chan *job
	budget  *budget
	limiter *connLimiter
	active  atomic.Int64 // streams being served
	service atomic.Int64 // moving average of a request's work, in ns

	mu       sync.Mutex
	draining bool
	conns    map[*quic.Conn]struct{}
	reading  map[*quic.Stream]struct{} // streams whose request is still arriving
	handlers sync.WaitGroup
	serving  atomic.Bool
}

// job is a request waiting for, or held by, a worker.
type job struct {
	h        wire.Header
	payload  []byte
	model    *Model
	enqueued time.Time
	deadline time.Time // zero: none
	done     chan *wire.Reply
}

// New returns a server for the given models (their bundles' hashes must
// differ).
func New(models []*Model, o Options) (*Server, error) {
	o.setDefaults()
	s := &Server{opts: o, models: map[[wire.HashSize]byte]*Model{}, conns: map[*quic.Conn]struct{}{}, reading: map[*quic.Stream]struct{}{}}
	s.metrics = newMetrics(o.Registry)
	s.budget = &budget{limit: o.MaxInflightBytes}
	s.limiter = &connLimiter{max: o.MaxConns, perAddr: o.MaxConnsPerAddr, byAddr: map[string]int{},
		onChange: func(n int) { s.metrics.conns.Set(float64(n)) }}
	for _, m := range models {
		if _, dup := s.models[m.Bundle.ID]; dup {
			return nil, fmt.Errorf("cloud: two bundles with hash %x", m.Bundle.ID)
		}
		s.models[m.Bundle.ID] = m
		o.Logger.Info("serving bundle", "name", m.Bundle.Name, "kind", m.Bundle.Kind, "hash", m.Bundle.Hash, "tasks", m.Tasks().String(), "engine", m.Engine())
		m.setObserver(func(stage wire.Stage, n int) { s.metrics.batchSize.WithLabelValues(string(stage)).Observe(float64(n)) })
	}
	return s, nil
}

// QUICConfig is the QUIC configuration the server listens with.
func (s *Server) QUICConfig() *quic.Config {
	return &quic.Config{
		Allow0RTT:                      true, // requests are idempotent inference: a replay costs compute, nothing else
		MaxIncomingStreams:             s.opts.MaxStreams,
		MaxIncomingUniStreams:          -1, // the protocol has none
		MaxIdleTimeout:                 s.opts.IdleTimeout,
		KeepAlivePeriod:                10 * time.Second,
		InitialStreamReceiveWindow:     min(s.opts.StreamReceiveWindow, 64<<10),
		MaxStreamReceiveWindow:         s.opts.StreamReceiveWindow,
		InitialConnectionReceiveWindow: min(s.opts.ConnReceiveWindow, 128<<10),
		MaxConnectionReceiveWindow:     s.opts.ConnReceiveWindow,
	}
}

// ListenAndServe listens on the UDP address addr and serves until ctx ends.
func (s *Server) ListenAndServe(ctx context.Context, addr string, tlsConf *tls.Config) error {
	if s.opts.AdminAddr != "" {
		serve, err := s.ListenAdmin(ctx, s.opts.AdminAddr)
		if err != nil {
			return err
		}
		go func() {
			if err := serve(); err != nil {
				s.opts.Logger.Error("admin server", "err", err)
			}
		}()
	}
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return fmt.Errorf("cloud: %w", err)
	}
	defer pc.Close()
	return s.Serve(ctx, pc, tlsConf)
}

// Serve serves QUIC on pc until ctx ends, then shuts down gracefully: it
// stops accepting connections and requests, finishes the requests in
// flight (up to ShutdownTimeout), and closes the connections.
func (s *Server) Serve(ctx context.Context, pc net.PacketConn, tlsConf *tls.Config) error {
	if len(s.opts.TicketKeys) > 0 {
		tlsConf = tlsConf.Clone()
		tlsConf.SetSessionTicketKeys(s.opts.TicketKeys)
	}
	tr := &quic.Transport{Conn: pc, StatelessResetKey: resetKey(tlsConf), ConnContext: s.limiter.admit, ConnectionIDGenerator: s.opts.ConnectionIDs}
	defer tr.Close()
	ln, err := tr.ListenEarly(tlsConf, s.QUICConfig())
	if err != nil {
		return fmt.Errorf("cloud: listen: %w", err)
	}
	s.queue = make(chan *job, s.opts.QueueSize)
	var workers sync.WaitGroup
	for range s.opts.Workers * s.maxBatch() {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for j := range s.queue {
				s.work(j)
			}
		}()
	}
	s.serving.Store(true)
	s.opts.Logger.Info("cloud serving", "addr", pc.LocalAddr().String(), "bundles", len(s.models), "workers", s.opts.Workers, "queue", s.opts.QueueSize,
		"max_conns", s.opts.MaxConns, "max_conns_per_addr", s.opts.MaxConnsPerAddr, "max_inflight_bytes", s.opts.MaxInflightBytes)

	// Connections are accepted and served until the drain delay after ctx
	// ends has passed.
	serveCtx, stopServing := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServing()
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		for {
			conn, err := ln.Accept(serveCtx)
			if err != nil {
				return
			}
			s.mu.Lock()
			if s.draining {
				s.mu.Unlock()
				conn.CloseWithError(wire.GoingAway, "server going away")
				continue
			}
			s.conns[conn] = struct{}{}
			s.mu.Unlock()
			go s.serveConn(serveCtx, conn)
		}
	}()

	<-ctx.Done()
	s.serving.Store(false) // /readyz fails from now on
	if s.opts.DrainDelay > 0 {
		s.opts.Logger.Info("cloud draining: still serving while the balancer moves away", "for", s.opts.DrainDelay)
		time.Sleep(s.opts.DrainDelay)
	}
	stopServing()
	s.mu.Lock()
	s.draining = true
	// Requests still arriving are not waited for: their streams are reset
	// without a reply, and the edge sends them again after it reconnects.
	for str := range s.reading {
		str.CancelRead(codeRefused)
	}
	s.mu.Unlock()
	ln.Close()
	<-accepted
	s.opts.Logger.Info("cloud draining in-flight requests")
	if !waitTimeout(&s.handlers, s.opts.ShutdownTimeout) {
		s.opts.Logger.Warn("cloud shutdown timeout: closing connections with requests in flight")
	}
	s.linger()
	s.closeConns()
	s.handlers.Wait() // their streams are gone now
	close(s.queue)
	workers.Wait()
	return nil
}

// resetKey derives the stateless reset key from the server's private key,
// so that a restarted server can reset the connections of its previous run
// and their clients reconnect at once instead of waiting for a timeout.
func resetKey(c *tls.Config) *quic.StatelessResetKey {
	if c == nil || len(c.Certificates) == 0 {
		return nil
	}
	der, err := x509.MarshalPKCS8PrivateKey(c.Certificates[0].PrivateKey)
	if err != nil {
		return nil
	}
	k := quic.StatelessResetKey(sha256.Sum256(append([]byte("splitstream stateless reset key\x00"), der...)))
	return &k
}

func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

// linger gives the last replies time to be delivered and acknowledged
// before the connections close (closing a QUIC connection abandons unsent
// stream data): a few round trips of the slowest connection, 50 ms at least
// and 1 s at most.
func (s *Server) linger() {
	s.mu.Lock()
	var rtt time.Duration
	for c := range s.conns {
		rtt = max(rtt, c.ConnectionStats().SmoothedRTT)
	}
	s.mu.Unlock()
	time.Sleep(min(50*time.Millisecond+4*rtt, time.Second))
}

func (s *Server) closeConns() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.CloseWithError(wire.GoingAway, "server going away")
	}
	clear(s.conns)
}

func (s *Server) serveConn(ctx context.Context, conn *quic.Conn) {
	log := s.opts.Logger.With("remote", conn.RemoteAddr().String())
	log.Debug("connection", "0rtt", conn.ConnectionState().Used0RTT)
	defer func() {
		// A connection that is still open when the server drains stays in
		// s.conns, for closeConns to close once its requests are done.
		if conn.Context().Err() != nil {
			s.mu.Lock()
			delete(s.conns, conn)
			s.mu.Unlock()
		}
	}()
	for {
		str, err := conn.AcceptStream(ctx)
		if err != nil {
			if ctx.Err() == nil {
				log.Debug("connection closed", "err", err)
			}
			return
		}
		s.mu.Lock()
		if s.draining {
			s.mu.Unlock()
			str.CancelRead(0)
			str.CancelWrite(0)
			return
		}
		if s.active.Add(1) > s.opts.MaxHandlers {
			s.mu.Unlock()
			s.active.Add(-1)
			s.metrics.refused.WithLabelValues("max_handlers").Inc()
			str.CancelRead(codeOverloaded)
			str.CancelWrite(codeOverloaded)
			continue
		}
		s.handlers.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.handlers.Done()
			defer s.active.Add(-1)
			s.handle(str, log)
		}()
	}
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// handle reads one request from its stream, queues it, and writes the reply.
// The header is checked before a byte of the payload is read; a request
// refused from its header gets STOP_SENDING (its payload is not wanted) and
// its reply.
func (s *Server) handle(str *quic.Stream, log *slog.Logger) {
	s.metrics.inflight.Inc()
	defer s.metrics.inflight.Dec()
	start := time.Now()
	str.SetReadDeadline(start.Add(s.opts.HeaderTimeout))
	cr := &countingReader{r: str}
	pr := &payloadReader{budget: s.budget}
	defer pr.done()
	s.mu.Lock()
	s.reading[str] = struct{}{}
	if s.draining {
		str.CancelRead(codeRefused)
	}
	s.mu.Unlock()
	reply, h := s.read(cr, str, pr, start)
	s.mu.Lock()
	delete(s.reading, str)
	s.mu.Unlock()
	s.metrics.received.Add(float64(cr.n))
	if reply == nil {
		return // the stream broke: nobody to answer
	}
	if reply.Status != wire.StatusOK && reply.Status != wire.StatusOverloaded {
		log.Debug("request refused", "id", h.RequestID, "status", reply.Status, "msg", reply.Message)
	}
	s.count(reply.Status, h)
	str.SetWriteDeadline(time.Now().Add(s.opts.ReadTimeout))
	if err := wire.WriteReply(str, reply); err != nil {
		log.Debug("write reply", "id", h.RequestID, "err", err)
		str.CancelWrite(0)
		return
	}
	str.Close()
}

// read reads and checks one request and returns its reply (nil when the
// stream broke and there is nobody to answer). A refused request's stream
// gets STOP_SENDING.
func (s *Server) read(cr *countingReader, str *quic.Stream, pr *payloadReader, start time.Time) (*wire.Reply, wire.Header) {
	refuse := func(h wire.Header, st wire.Status, msg string) (*wire.Reply, wire.Header) {
		str.CancelRead(codeRefused)
		r := &wire.Reply{Status: st, RequestID: h.RequestID, Message: limit(msg)}
		if st == wire.StatusOverloaded {
			r.Timings = []wire.Timing{{Stage: wire.StageRetryAfter, Duration: s.retryAfter()}}
		}
		return r, h
	}
	failed := func(h wire.Header, err error, what string) (*wire.Reply, wire.Header) {
		if errors.Is(err, wire.ErrMalformed) {
			return refuse(h, wire.StatusBadRequest, err.Error())
		}
		var nerr net.Error
		if errors.As(err, &nerr) && nerr.Timeout() {
			s.metrics.refused.WithLabelValues("read_timeout").Inc()
			return refuse(h, wire.StatusBadRequest, what+" not received within the read timeout: "+err.Error())
		}
		s.opts.Logger.Debug("request stream failed", "err", err)
		str.CancelWrite(0)
		return nil, h
	}
	h, err := wire.ReadHeader(cr)
	if err != nil {
		return failed(h, err, "header")
	}
	if r := s.checkHeader(&h); r != nil {
		return refuse(h, r.Status, r.Message)
	}
	if len(s.queue) >= cap(s.queue) {
		return refuse(h, wire.StatusOverloaded, fmt.Sprintf("queue full (%d requests waiting)", s.opts.QueueSize))
	}
	str.SetReadDeadline(start.Add(s.opts.ReadTimeout))
	payload, err := wire.ReadPayload(cr, &h, nil, pr.grow)
	switch {
	case errors.Is(err, errBudget):
		s.metrics.refused.WithLabelValues("inflight_bytes").Inc()
		return refuse(h, wire.StatusOverloaded, fmt.Sprintf("%v (%d bytes)", err, s.opts.MaxInflightBytes))
	case err != nil:
		return failed(h, err, "request")
	}
	// The edge closes its side after the payload: anything more is a
	// malformed frame.
	var extra [1]byte
	if n, rerr := io.ReadFull(cr, extra[:]); n > 0 {
		return refuse(h, wire.StatusBadRequest, "bytes after the payload")
	} else if !errors.Is(rerr, io.EOF) {
		return failed(h, rerr, "end of the request")
	}
	s.mu.Lock()
	delete(s.reading, str)
	s.mu.Unlock()
	return s.dispatch(h, payload, start), h
}

func limit(msg string) string {
	if len(msg) > wire.MaxMessage {
		return msg[:wire.MaxMessage]
	}
	return msg
}

// retryAfter is the hint an overloaded reply carries: the time the queue
// takes to drain at the recent service rate, (queued + 1) x mean work per
// request / workers, between 5 ms and 2 s.
func (s *Server) retryAfter() time.Duration {
	per := time.Duration(s.service.Load())
	if per <= 0 {
		per = 10 * time.Millisecond
	}
	d := time.Duration(len(s.queue)+1) * per / time.Duration(s.opts.Workers)
	return min(max(d, 5*time.Millisecond), 2*time.Second)
}

// observeService folds one request's work time into the moving average
// (weight 1/8) behind retryAfter.
func (s *Server) observeService(d time.Duration) {
	old := s.service.Load()
	if old == 0 {
		s.service.Store(int64(d))
		return
	}
	s.service.Store(old + (int64(d)-old)/8)
}

// dispatch queues a request that passed checkHeader; it returns the reply
// once a worker has run it, or at once when the queue is full.
func (s *Server) dispatch(h wire.Header, payload []byte, received time.Time) *wire.Reply {
	m := s.models[h.Bundle]
	j := &job{h: h, payload: payload, model: m, enqueued: time.Now(), done: make(chan *wire.Reply, 1)}
	if h.DeadlineMS > 0 {
		j.deadline = received.Add(time.Duration(h.DeadlineMS) * time.Millisecond)
	}
	select {
	case s.queue <- j:
		s.metrics.queueDepth.Inc()
	default:
		return &wire.Reply{Status: wire.StatusOverloaded, RequestID: h.RequestID,
			Message: fmt.Sprintf("queue full (%d requests waiting)", s.opts.QueueSize),
			Timings: []wire.Timing{{Stage: wire.StageRetryAfter, Duration: s.retryAfter()}}}
	}
	return <-j.done
}

// work runs one queued request and hands its reply back.
func (s *Server) work(j *job) {
	s.metrics.queueDepth.Dec()
	r := &wire.Reply{RequestID: j.h.RequestID}
	defer func() { j.done <- r }()
	queued := time.Since(j.enqueued)
	r.Timings = append(r.Timings, wire.Timing{Stage: wire.StageQueue, Duration: queued})
	ctx := context.Background()
	if !j.deadline.IsZero() {
		if time.Now().After(j.deadline) {
			r.Status, r.Message = wire.StatusDeadlineExceeded, fmt.Sprintf("deadline passed after %v in the queue", queued.Round(time.Microsecond))
			return
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, j.deadline)
		defer cancel()
	}
	start := time.Now()
	defer func() { s.observeService(time.Since(start)) }()
	x, err := j.model.Decode(codec.ID(j.h.Codec), j.payload, shapeOf(j.h))
	if err != nil {
		r.Status, r.Message = wire.StatusBadRequest, limit("decode payload: "+err.Error())
		return
	}
	r.Timings = append(r.Timings, wire.Timing{Stage: wire.StageDecode, Duration: time.Since(start)})
	out, err := j.model.Run(ctx, x, j.h.Tasks)
	switch {
	case err != nil && ctx.Err() != nil:
		r.Status, r.Message = wire.StatusDeadlineExceeded, limit(err.Error())
		return
	case err != nil:
		s.opts.Logger.Warn("request failed", "id", j.h.RequestID, "bundle", j.model.Bundle.Name, "err", err)
		r.Status, r.Message = wire.StatusInternal, limit(err.Error())
		return
	case ctx.Err() != nil:
		// The last stage finished after the deadline: the answer is late,
		// whatever it says.
		r.Status, r.Message = wire.StatusDeadlineExceeded, "the request's deadline passed while it ran"
		return
	}
	r.Status = wire.StatusOK
	r.Results = out.Results
	r.Timings = append(r.Timings, out.Timings...)
	for _, t := range r.Timings {
		s.metrics.stage.WithLabelValues(string(t.Stage)).Observe(t.Duration.Seconds())
	}
	s.metrics.stage.WithLabelValues("total").Observe(time.Since(j.enqueued).Seconds())
}

// count records a reply in the request counter, once per requested task.
func (s *Server) count(st wire.Status, h wire.Header) {
	ts := h.Tasks.List()
	if len(ts) == 0 || h.Tasks&^wire.AllTasks != 0 {
		s.metrics.requests.WithLabelValues(st.String(), "unknown").Inc()
		return
	}
	for _, t := range ts {
		s.metrics.requests.WithLabelValues(st.String(), t.String()).Inc()
	}
}

// Admin serves the admin endpoints: /livez (200 while the process
// answers), /readyz and its older name /healthz (200 while the server
// serves and is not draining: the readiness a load balancer or Kubernetes
// probes), and /metrics (Prometheus).
func (s *Server) Admin() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(s.opts.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/livez", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	ready := func(w http.ResponseWriter, r *http.Request) {
		if !s.serving.Load() {
			http.Error(w, "not serving", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	}
	mux.HandleFunc("/readyz", ready)
	mux.HandleFunc("/healthz", ready)
	return mux
}

// ListenAdmin listens on addr for Admin at once, so that an address in use
// is an error at startup, and returns the function that serves it until ctx
// ends (and the drain after it).
func (s *Server) ListenAdmin(ctx context.Context, addr string) (serve func() error, err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cloud: admin: %w", err)
	}
	srv := &http.Server{Handler: s.Admin(), ReadHeaderTimeout: 5 * time.Second}
	return func() error {
		go func() {
			<-ctx.Done()
			shut, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			srv.Shutdown(shut)
		}()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}, nil
}

// shapeOf is the tensor shape a request header announces.
func shapeOf(h wire.Header) codec.Shape {
	return codec.Shape{C: int(h.Channels), H: int(h.Height), W: int(h.Width)}
}
