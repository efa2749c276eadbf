package trace

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/splitstream/splitstream/cloud"
	"github.com/splitstream/splitstream/edge"
	"github.com/splitstream/splitstream/wire"
)

var quiet = slog.New(slog.DiscardHandler)

// readTimeout bounds the time to receive one request, as the cloud's
// default ReadTimeout does.
const readTimeout = 10 * time.Second

// replayKey names a calibrated request by its content.
type replayKey struct {
	bundle  [wire.HashSize]byte
	codec   uint8
	payload [sha256.Size]byte
}

func keyOf(h wire.Header, payload []byte) replayKey {
	return replayKey{bundle: h.Bundle, codec: h.Codec, payload: sha256.Sum256(payload)}
}

// replayCloud is a QUIC server that speaks the cloud's protocol but does
// not compute: it answers each calibrated request with the reply the real
// cloud gave it in the calibration, after waiting the time the cloud then
// reported for it. Requests it does not know get StatusInternal.
type replayCloud struct {
	replies    map[replayKey]*Calibrated
	maxPayload uint32
	late       Lateness // how much later than asked its waits ended
}

func newReplayCloud(c *Calibration) *replayCloud {
	r := &replayCloud{replies: map[replayKey]*Calibrated{}}
	for p := range c.Work {
		for i := range c.Work[p] {
			w := &c.Work[p][i]
			if w.Reply != nil {
				r.replies[keyOf(w.Header, w.Payload)] = w
				r.maxPayload = max(r.maxPayload, uint32(len(w.Payload)))
			}
		}
	}
	return r
}

// serve serves on pc until ctx ends; it closes pc.
func (r *replayCloud) serve(ctx context.Context, pc net.PacketConn, srvTLS *tls.Config) (stop func(), err error) {
	srv, err := cloud.New(nil, cloud.Options{Logger: quiet})
	if err != nil {
		return nil, err
	}
	tr := &quic.Transport{Conn: pc}
	ln, err := tr.ListenEarly(srvTLS, srv.QUICConfig()) // the real cloud's QUIC settings
	if err != nil {
		tr.Close()
		pc.Close()
		return nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			conn, err := ln.Accept(sctx)
			if err != nil {
				return
			}
			wg.Go(func() { r.serveConn(sctx, conn) })
		}
	})
	return func() {
		cancel()
		ln.Close()
		wg.Wait()
		tr.Close()
		pc.Close()
	}, nil
}

func (r *replayCloud) serveConn(ctx context.Context, conn *quic.Conn) {
	// Closing the connection when the server stops ends the reads of
	// requests that will never complete (their packets died with a relay).
	stop := context.AfterFunc(ctx, func() { conn.CloseWithError(0, "replay cloud closing") })
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		str, err := conn.AcceptStream(ctx)
		if err != nil {
			return
		}
		wg.Go(func() { r.handle(ctx, str) })
	}
}

func (r *replayCloud) handle(ctx context.Context, str *quic.Stream) {
	str.SetReadDeadline(time.Now().Add(readTimeout))
	h, payload, err := wire.ReadRequest(str, r.maxPayload)
	if err != nil {
		str.CancelRead(0)
		str.CancelWrite(0)
		return
	}
	received := time.Now()
	reply := &wire.Reply{Status: wire.StatusInternal, RequestID: h.RequestID, Message: "replay cloud: request not calibrated"}
	if w := r.replies[keyOf(h, payload)]; w != nil {
		if !r.late.wait(ctx, received, w.Cloud) {
			str.CancelWrite(0)
			return
		}
		rep := *w.Reply
		rep.RequestID = h.RequestID
		reply = &rep
	}
	if err := wire.WriteReply(str, reply); err != nil {
		str.CancelWrite(0)
		return
	}
	str.Close()
}

// Lateness sums how much later than asked the emulation's waits ended:
// the scheduler's share of the figures, reported with them.
type Lateness struct {
	mu         sync.Mutex
	n          int
	total, max time.Duration
}

// wait waits d from start; it reports false if ctx ended first.
func (l *Lateness) wait(ctx context.Context, start time.Time, d time.Duration) bool {
	due := start.Add(d)
	if !sleepUntil(ctx, due) {
		return false
	}
	late := time.Since(due)
	l.mu.Lock()
	l.n++
	l.total += late
	l.max = max(l.max, late)
	l.mu.Unlock()
	return true
}

// Summary returns the number of waits, their mean and largest lateness.
func (l *Lateness) Summary() (n int, mean, largest time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n > 0 {
		mean = l.total / time.Duration(l.n)
	}
	return l.n, mean, l.max
}

// replayDevice is an emulated edge device: a frame's compute at a point is
// the point's calibrated compute (Calibration.Compute) times the slowdown,
// waited out; an offload point's request is the frame's calibrated one,
// sent for real through client.
type replayDevice struct {
	cal      *Calibration
	client   *edge.Client // nil when no point offloads
	slowdown float64
	ids      atomic.Uint64
	late     *Lateness
}

func (d *replayDevice) Compute(ctx context.Context, point int, f Frame) (Work, error) {
	w := &d.cal.Work[point][f.Image]
	start := time.Now()
	if !d.late.wait(ctx, start, time.Duration(float64(d.cal.Compute[point])*d.slowdown)) {
		return Work{}, ctx.Err()
	}
	took := time.Since(start) // what the frame lost, lateness included
	if w.Reply == nil {
		return Work{Edge: took, Local: &Answer{Top1: w.Top1, OK: w.OK}}, nil
	}
	return Work{Edge: took, Bytes: wire.HeaderSize + len(w.Payload), Request: w}, nil
}

func (d *replayDevice) Send(ctx context.Context, _ int, work Work) (Answer, error) {
	w, ok := work.Request.(*Calibrated)
	if !ok || d.client == nil {
		return Answer{}, errors.New("trace: nothing to send")
	}
	h := w.Header
	h.RequestID = d.ids.Add(1)
	reply, err := d.client.Do(ctx, h, w.Payload)
	if err != nil {
		return Answer{}, err
	}
	if reply.Status != wire.StatusOK {
		return Answer{}, fmt.Errorf("cloud: %s: %s", reply.Status, reply.Message)
	}
	a := Answer{Cloud: CloudTime(reply)}
	a.Top1, a.OK = top1(reply.Results)
	return a, nil
}
