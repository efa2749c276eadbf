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

// Options configure a Server. The zero value gives the documented defaults.
type Options struct {
	// QueueSize is how many requests may wait for a worker; a request that
	// finds the queue full is answered "overloaded" at once. Default 64.
	QueueSize int
	// Workers is how many requests are decoded and run at once. Default
	// one per CPU.
	Workers int
	// MaxPayload bounds a request's payload. Default 16 MiB.
	MaxPayload uint32
	// ReadTimeout bounds the time to receive a whole request (and to write
	// its reply). Default 10 s.
	ReadTimeout time.Duration
	// ShutdownTimeout bounds how long shutdown waits for in-flight
	// requests before closing connections. Default 30 s.
	ShutdownTimeout time.Duration
	// MaxStreams is how many requests one connection may have open at
	// once (QUIC's stream limit). Default 256.
	MaxStreams int64
	// Registry receives the server's metrics. Default: a new registry.
	Registry *prometheus.Registry
	// Logger logs connections and failures. Default: slog.Default().
	Logger *slog.Logger
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
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 10 * time.Second
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 30 * time.Second
	}
	if o.MaxStreams <= 0 {
		o.MaxStreams = 256
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

	mu       sync.Mutex
	draining bool
	conns    map[*quic.Conn]struct{}
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
	s := &Server{opts: o, models: map[[wire.HashSize]byte]*Model{}, conns: map[*quic.Conn]struct{}{}}
	s.metrics = newMetrics(o.Registry)
	for _, m := range models {
		if _, dup := s.models[m.Bundle.ID]; dup {
			return nil, fmt.Errorf("cloud: two bundles with hash %x", m.Bundle.ID)
		}
		s.models[m.Bundle.ID] = m
		m.setObserver(func(stage wire.Stage, n int) { s.metrics.batchSize.WithLabelValues(string(stage)).Observe(float64(n)) })
	}
	return s, nil
}

// QUICConfig is the QUIC configuration the server listens with.
func (s *Server) QUICConfig() *quic.Config {
	return &quic.Config{
		Allow0RTT:          true, // requests are idempotent inference: a replay costs compute, nothing else
		MaxIncomingStreams: s.opts.MaxStreams,
		MaxIdleTimeout:     30 * time.Second,
		KeepAlivePeriod:    10 * time.Second,
	}
}

// ListenAndServe listens on the UDP address addr and serves until ctx ends.
func (s *Server) ListenAndServe(ctx context.Context, addr string, tlsConf *tls.Config) error {
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
	tr := &quic.Transport{Conn: pc, StatelessResetKey: resetKey(tlsConf)}
	defer tr.Close()
	ln, err := tr.ListenEarly(tlsConf, s.QUICConfig())
	if err != nil {
		return fmt.Errorf("cloud: listen: %w", err)
	}
	s.queue = make(chan *job, s.opts.QueueSize)
	var workers sync.WaitGroup
	for range s.opts.Workers {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for j := range s.queue {
				s.work(j)
			}
		}()
	}
	s.serving.Store(true)
	s.opts.Logger.Info("cloud serving", "addr", pc.LocalAddr().String(), "bundles", len(s.models), "workers", s.opts.Workers, "queue", s.opts.QueueSize)

	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		for {
			conn, err := ln.Accept(ctx)
			if err != nil {
				return
			}
			s.mu.Lock()
			if s.draining {
				s.mu.Unlock()
				conn.CloseWithError(0, "server shutting down")
				continue
			}
			s.conns[conn] = struct{}{}
			s.mu.Unlock()
			go s.serveConn(ctx, conn)
		}
	}()

	<-ctx.Done()
	s.serving.Store(false)
	s.mu.Lock()
	s.draining = true
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
		c.CloseWithError(0, "server shutting down")
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
		s.handlers.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.handlers.Done()
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
func (s *Server) handle(str *quic.Stream, log *slog.Logger) {
	s.metrics.inflight.Inc()
	defer s.metrics.inflight.Dec()
	start := time.Now()
	str.SetDeadline(start.Add(s.opts.ReadTimeout))
	cr := &countingReader{r: str}
	h, payload, err := wire.ReadRequest(cr, s.opts.MaxPayload)
	if err == nil {
		// The edge closes its side after the payload: anything more is a
		// malformed frame.
		var extra [1]byte
		if n, rerr := io.ReadFull(cr, extra[:]); n > 0 {
			err = fmt.Errorf("%w: bytes after the payload", wire.ErrMalformed)
		} else if !errors.Is(rerr, io.EOF) {
			err = fmt.Errorf("waiting for the end of the request: %w", rerr)
		}
	}
	s.metrics.received.Add(float64(cr.n))
	var reply *wire.Reply
	switch {
	case err != nil:
		msg := err.Error()
		if !errors.Is(err, wire.ErrMalformed) {
			var nerr net.Error
			if !errors.As(err, &nerr) || !nerr.Timeout() {
				// The stream broke (reset, connection gone): nobody to answer.
				log.Debug("request stream failed", "err", err)
				str.CancelWrite(0)
				return
			}
			msg = "request not received within the read timeout: " + msg
		}
		reply = &wire.Reply{Status: wire.StatusBadRequest, RequestID: h.RequestID, Message: limit(msg)}
	default:
		reply = s.dispatch(h, payload, start)
	}
	s.count(reply.Status, h)
	if reply.Status != wire.StatusOK {
		log.Debug("request refused", "id", h.RequestID, "status", reply.Status, "msg", reply.Message)
	}
	str.SetWriteDeadline(time.Now().Add(s.opts.ReadTimeout))
	if err := wire.WriteReply(str, reply); err != nil {
		log.Debug("write reply", "id", h.RequestID, "err", err)
		str.CancelWrite(0)
		return
	}
	str.Close()
}

func limit(msg string) string {
	if len(msg) > wire.MaxMessage {
		return msg[:wire.MaxMessage]
	}
	return msg
}

// dispatch checks a request against the bundles and queues it; it returns
// the reply once a worker has run it, or at once when it is refused.
func (s *Server) dispatch(h wire.Header, payload []byte, received time.Time) *wire.Reply {
	refuse := func(st wire.Status, format string, args ...any) *wire.Reply {
		return &wire.Reply{Status: st, RequestID: h.RequestID, Message: limit(fmt.Sprintf(format, args...))}
	}
	m := s.models[h.Bundle]
	if m == nil {
		return refuse(wire.StatusUnknownBundle, "no bundle with hash sha256:%x on this server", h.Bundle)
	}
	if err := m.Accept(codec.ID(h.Codec), shapeOf(h), h.Tasks); err != nil {
		return refuse(wire.StatusBadRequest, "%v", err)
	}
	j := &job{h: h, payload: payload, model: m, enqueued: time.Now(), done: make(chan *wire.Reply, 1)}
	if h.DeadlineMS > 0 {
		j.deadline = received.Add(time.Duration(h.DeadlineMS) * time.Millisecond)
	}
	select {
	case s.queue <- j:
		s.metrics.queueDepth.Inc()
	default:
		return refuse(wire.StatusOverloaded, "queue full (%d requests waiting)", s.opts.QueueSize)
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

// Handler serves /metrics (Prometheus) and /healthz (200 while serving,
// 503 before and while shutting down).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(s.opts.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if !s.serving.Load() {
			http.Error(w, "not serving", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
}

// ServeMetrics serves Handler on addr until ctx ends.
func (s *Server) ServeMetrics(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("cloud: metrics: %w", err)
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second}
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
}

// shapeOf is the tensor shape a request header announces.
func shapeOf(h wire.Header) codec.Shape {
	return codec.Shape{C: int(h.Channels), H: int(h.Height), W: int(h.Width)}
}
