package edge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/splitstream/splitstream/bundle"
	"github.com/splitstream/splitstream/codec"
	"github.com/splitstream/splitstream/wire"
)

// AgentOptions configure an Agent.
type AgentOptions struct {
	// Tasks to request; zero means every task the bundle has a head for.
	Tasks wire.Tasks
	// Concurrency is how many images are in flight at once. Default 4.
	Concurrency int
	// Deadline is sent with each request: the time the cloud has for it.
	// Zero means none.
	Deadline time.Duration
	// Timeout bounds one request on the edge, connecting and retries
	// included. Default 30 s.
	Timeout time.Duration
	// MaxRetries bounds how often one request is sent again after an
	// overloaded reply; 0 (the default) retries until Timeout, so that
	// overload delays a request but does not lose it. Each retry waits the reply's
	// retry-after hint (jittered between half and one and a half of it),
	// or, without a hint, RetryBackoff doubled per retry up to 2 s, with
	// jitter; and the window of requests in flight halves.
	MaxRetries int
	// RetryBackoff is the first wait after an overloaded reply without a
	// hint. Default 20 ms.
	RetryBackoff time.Duration
	// Local, when set, learns from every classification the cloud answers
	// (Edge2Train); with Fallback it also answers classification when the
	// cloud cannot: the record then says "source": "local" and lists the
	// other requested tasks as unserved. It needs the learned codec.
	Local    *Local
	Fallback bool
}

// Agent encodes images and sends them to the cloud.
type Agent struct {
	enc    *Encoder
	client *Client
	opts   AgentOptions
	nextID atomic.Uint64
	window *window
	op     *operating // nil: every frame with enc (the fixed policy)

	retries    atomic.Int64 // requests sent again after an overloaded reply
	overloaded atomic.Int64 // overloaded replies received
	learnErrs  atomic.Int64 // frames the local model failed to learn
}

// NewAgent returns an agent that encodes with enc and sends through client.
func NewAgent(enc *Encoder, client *Client, o AgentOptions) (*Agent, error) {
	have := enc.Bundle.Tasks()
	if o.Tasks == 0 {
		o.Tasks = have
	}
	if missing := o.Tasks &^ have; missing != 0 {
		return nil, fmt.Errorf("bundle %s has no head for %v", enc.Bundle.Name, missing.List())
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.RetryBackoff <= 0 {
		o.RetryBackoff = 20 * time.Millisecond
	}
	if o.Local != nil && enc.Codec.ID() != codec.IDLearned {
		return nil, fmt.Errorf("local learning needs the learned codec, not %v", enc.Codec.ID())
	}
	if o.Fallback && o.Local == nil {
		return nil, errors.New("a local fallback needs a local model (--learn DIR)")
	}
	return &Agent{enc: enc, client: client, opts: o, window: newWindow(o.Concurrency)}, nil
}

// Record is the outcome of one image: one JSON line of the edge's output.
type Record struct {
	Index   int      `json:"index"`
	Image   string   `json:"image"`
	Status  string   `json:"status"` // a wire status, or "error" for a failure on the edge
	Error   string   `json:"error,omitempty"`
	Bytes   int      `json:"bytes"`             // bytes sent: header and payload
	Retries int      `json:"retries,omitempty"` // sent again after overloaded replies
	Results *Results `json:"results,omitempty"`
	// Source is "local" when the edge's own model answered (the cloud did
	// not; Error says why), and Unserved the requested tasks it could not.
	Source   string   `json:"source,omitempty"`
	Unserved []string `json:"unserved,omitempty"`
	Latency  Latency  `json:"latency_ms"`
	// Point names the operating point the adaptive policy chose for the
	// frame (empty for the fixed policy).
	Point string `json:"point,omitempty"`
	// Reply is the cloud's reply as received (nil if none).
	Reply *wire.Reply `json:"-"`
	err   error       // the failure behind Error, if the request got no reply
}

// Latency is the breakdown of one request, in milliseconds. Network is the
// round trip minus the cloud's own stages, so no clock synchronisation is
// needed.
type Latency struct {
	Preprocess    float64 `json:"preprocess"`
	Encoder       float64 `json:"encoder"`
	EntropyEncode float64 `json:"entropy_encode"`
	Network       float64 `json:"network"`
	CloudQueue    float64 `json:"cloud_queue"`
	Decode        float64 `json:"decode"`
	Heads         float64 `json:"heads"` // trunk and the slowest head (heads run concurrently)
	Post          float64 `json:"post"`
	Total         float64 `json:"total"`
}

// Stages lists the latency stages in order, with their values.
func (l Latency) Stages() []Stage {
	return []Stage{
		{"preprocess", l.Preprocess}, {"encoder", l.Encoder}, {"entropy_encode", l.EntropyEncode},
		{"network", l.Network}, {"cloud_queue", l.CloudQueue}, {"decode", l.Decode},
		{"heads", l.Heads}, {"post", l.Post}, {"total", l.Total},
	}
}

// Stage is one named latency figure in milliseconds.
type Stage struct {
	Name string
	MS   float64
}

// Results are the task results with label names.
type Results struct {
	Classify []ClassResult `json:"classify,omitempty"`
	Detect   []BoxResult   `json:"detect,omitempty"`
	Segment  *MaskResult   `json:"segment,omitempty"`
}

// ClassResult is one top-k entry.
type ClassResult struct {
	Label string  `json:"label"`
	Index int     `json:"index"`
	Score float32 `json:"score"`
}

// BoxResult is one detection; Box is x0, y0, x1, y1 in the input image's
// pixels.
type BoxResult struct {
	Label string     `json:"label"`
	Class int        `json:"class"`
	Score float32    `json:"score"`
	Box   [4]float32 `json:"box"`
}

// MaskResult is a run-length encoded mask of the input image's size: runs
// of [class, length] in row-major order.
type MaskResult struct {
	Width  int         `json:"width"`
	Height int         `json:"height"`
	Runs   [][2]uint32 `json:"runs"`
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func label(labels []string, i int) string {
	if i >= 0 && i < len(labels) {
		return labels[i]
	}
	return fmt.Sprint(i)
}

// results names the reply's results with bundle b's labels.
func results(r *wire.Reply, b *bundle.Bundle) *Results {
	out := &Results{}
	for _, res := range r.Results {
		switch res.Task {
		case wire.Classify:
			labels := b.Head(bundle.TaskClassification).Labels
			for _, c := range res.Classes {
				out.Classify = append(out.Classify, ClassResult{label(labels, int(c.Label)), int(c.Label), c.Score})
			}
		case wire.Detect:
			labels := b.Head(bundle.TaskDetection).Labels
			for _, d := range res.Boxes {
				out.Detect = append(out.Detect, BoxResult{label(labels, int(d.Class)), int(d.Class), d.Score, [4]float32{d.X0, d.Y0, d.X1, d.Y1}})
			}
		case wire.Segment:
			m := &MaskResult{Width: res.Mask.Width, Height: res.Mask.Height}
			for _, run := range res.Mask.Runs {
				m.Runs = append(m.Runs, [2]uint32{uint32(run.Class), run.Len})
			}
			out.Segment = m
		}
	}
	return out
}

// Process encodes one image, sends it and returns its record. With the
// adaptive policy, the policy chooses the operating point and learns from
// the outcome; the first call calibrates it (Run does so before any).
func (a *Agent) Process(ctx context.Context, it Item) Record {
	if a.op == nil {
		return a.process(ctx, it, -1)
	}
	if err := a.calibrate(ctx); err != nil {
		return Record{Index: it.Index, Image: it.Name, Status: "error", Error: err.Error()}
	}
	i := a.op.choose(a.client)
	rec := a.process(ctx, it, i)
	a.op.outcome(i, rec)
	return rec
}

// process handles one image at operating point i (-1: the agent's own
// encoder).
func (a *Agent) process(ctx context.Context, it Item, i int) Record {
	rec := Record{Index: it.Index, Image: it.Name, Status: "error"}
	enc := a.enc
	if i >= 0 {
		enc, rec.Point = a.op.encs[i], a.op.points[i].Name
	}
	if it.Err != nil {
		rec.Error = it.Err.Error()
		return rec
	}
	ctx, cancel := context.WithTimeout(ctx, a.opts.Timeout)
	defer cancel()
	start := time.Now()
	payload, et, err := enc.Encode(ctx, it.Data)
	rec.Latency.Preprocess, rec.Latency.Encoder, rec.Latency.EntropyEncode = ms(et.Preprocess), ms(et.Encoder), ms(et.Entropy)
	if err != nil {
		rec.Error = it.Name + ": " + err.Error()
		return rec
	}
	if i >= 0 && a.op.points[i].Local {
		return a.answerLocally(ctx, enc, rec, payload, start)
	}
	s := enc.Bundle.Shape()
	h := wire.Header{
		Codec: uint8(enc.Codec.ID()), Tasks: a.opts.Tasks,
		Channels: uint16(s.C), Height: uint16(s.H), Width: uint16(s.W),
		RequestID: a.nextID.Add(1), Bundle: enc.Bundle.ID,
		DeadlineMS: uint32(a.opts.Deadline.Milliseconds()),
	}
	rec.Bytes = wire.HeaderSize + len(payload)
	reply, rtt, retries, err := a.Send(ctx, h, payload)
	rec.Retries = retries
	rec.Latency.Total = ms(time.Since(start))
	if err != nil {
		rec.Error = it.Name + ": " + err.Error()
		rec.err = err
		a.learn(ctx, enc, it.Name, nil, payload)
		return a.answerLocally(ctx, enc, rec, payload, start)
	}
	rec.Reply = reply
	rec.Status = reply.Status.String()
	var cloud, heads time.Duration
	for _, t := range reply.Timings {
		if _, ok := t.Stage.Head(); ok {
			heads = max(heads, t.Duration) // heads run concurrently
			continue
		}
		switch t.Stage {
		case wire.StageQueue:
			rec.Latency.CloudQueue = ms(t.Duration)
			cloud += t.Duration
		case wire.StageDecode:
			rec.Latency.Decode = ms(t.Duration)
			cloud += t.Duration
		case wire.StagePost:
			rec.Latency.Post = ms(t.Duration)
			cloud += t.Duration
		case wire.StageTrunk:
			cloud += t.Duration
			rec.Latency.Heads += ms(t.Duration)
		}
	}
	cloud += heads
	rec.Latency.Heads += ms(heads)
	rec.Latency.Network = ms(max(rtt-cloud, 0))
	if reply.Status != wire.StatusOK {
		rec.Error = fmt.Sprintf("%s: server %s: %v: %s", it.Name, a.client.Addr(), reply.Status, reply.Message)
		return a.answerLocally(ctx, enc, rec, payload, start)
	}
	a.learn(ctx, enc, it.Name, reply, payload)
	rec.Results = results(reply, enc.Bundle)
	iw, ih := imageSize(it.Data)
	toImageFrame(rec.Results, enc.Bundle.Input.Width, enc.Bundle.Input.Height, iw, ih)
	return rec
}

// Send sends one request, retrying it after overloaded replies (up to
// MaxRetries, waiting the reply's retry-after hint) within the window of
// requests in flight, which it adapts: it halves on an overloaded reply and
// grows by one per window of ok replies, up to Concurrency (AIMD). It
// returns the last reply, the round trip of the last attempt and the
// number of retries.
func (a *Agent) Send(ctx context.Context, h wire.Header, payload []byte) (*wire.Reply, time.Duration, int, error) {
	backoff := a.opts.RetryBackoff
	for retries := 0; ; retries++ {
		if err := a.window.acquire(ctx); err != nil {
			return nil, 0, retries, fmt.Errorf("server %s: waiting for the window: %w", a.client.Addr(), err)
		}
		sent := time.Now()
		reply, err := a.client.Do(ctx, h, payload)
		rtt := time.Since(sent)
		a.window.release()
		if err != nil {
			return nil, rtt, retries, err
		}
		if reply.Status != wire.StatusOverloaded {
			if reply.Status == wire.StatusOK {
				a.window.grow()
			}
			return reply, rtt, retries, nil
		}
		a.overloaded.Add(1)
		a.window.shrink()
		if a.opts.MaxRetries > 0 && retries >= a.opts.MaxRetries {
			return reply, rtt, retries, nil
		}
		// The cloud's hint, jittered around its value, keeps the cloud busy
		// without piling up; without a hint, back off exponentially.
		wait := reply.RetryAfter()
		if wait > 0 {
			wait = wait/2 + rand.N(wait+1)
		} else {
			wait = backoff/2 + rand.N(backoff/2+1)
			backoff = min(2*backoff, 2*time.Second)
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return reply, rtt, retries, nil
		}
		a.retries.Add(1)
	}
}

// AgentStats are the agent's counters.
type AgentStats struct {
	Retries, OverloadedReplies int64
	LearnErrors                int64   // frames the local model failed to learn
	Window                     float64 // the current window of requests in flight
}

// Stats returns the agent's counters.
func (a *Agent) Stats() AgentStats {
	return AgentStats{Retries: a.retries.Load(), OverloadedReplies: a.overloaded.Load(), LearnErrors: a.learnErrs.Load(), Window: a.window.size()}
}

// Run processes the items with up to Concurrency requests in flight and
// calls emit for each record, from one goroutine at a time, in completion
// order. A permanent failure (ErrPermanent: the server's certificate does
// not verify, its name does not resolve) ends the run at once: Run emits
// that record and returns its error; the caller should stop feeding items.
func (a *Agent) Run(ctx context.Context, items <-chan Item, emit func(Record)) error {
	if a.op != nil {
		if err := a.calibrate(ctx); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var fatal error
	for range a.opts.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				var it Item
				var ok bool
				select {
				case it, ok = <-items:
				case <-ctx.Done():
				}
				if !ok {
					return
				}
				rec := a.Process(ctx, it)
				mu.Lock()
				if fatal == nil || !errors.Is(rec.err, context.Canceled) {
					emit(rec)
				}
				if fatal == nil && errors.Is(rec.err, ErrPermanent) {
					fatal = rec.err
					cancel()
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return fatal
}

// window is an AIMD window of requests in flight: at most size at once;
// size halves on an overloaded reply (not below 1) and grows by 1/size per
// ok reply (so by one per window), up to max.
type window struct {
	mu       sync.Mutex
	cond     *sync.Cond
	cur, max float64
	inflight int
}

func newWindow(n int) *window {
	w := &window{cur: float64(n), max: float64(n)}
	w.cond = sync.NewCond(&w.mu)
	return w
}

func (w *window) acquire(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { w.mu.Lock(); w.cond.Broadcast(); w.mu.Unlock() })
	defer stop()
	w.mu.Lock()
	defer w.mu.Unlock()
	for float64(w.inflight) >= max(1, w.cur) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		w.cond.Wait()
	}
	w.inflight++
	return nil
}

func (w *window) release() {
	w.mu.Lock()
	w.inflight--
	w.cond.Signal()
	w.mu.Unlock()
}

func (w *window) grow() {
	w.mu.Lock()
	w.cur = min(w.max, w.cur+1/max(1, w.cur))
	w.cond.Broadcast()
	w.mu.Unlock()
}

func (w *window) shrink() {
	w.mu.Lock()
	w.cur = max(1, w.cur/2)
	w.mu.Unlock()
}

func (w *window) size() float64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cur
}

// RunInputs processes the images named by inputs (files, folders, or "-"
// for a stream of images on stdin) as Run does. It returns an error when the
// inputs could not be listed or read to the end.
func (a *Agent) RunInputs(ctx context.Context, inputs []string, stdin io.Reader, emit func(Record)) error {
	paths, err := Paths(inputs)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	items, readErr := make(chan Item, a.opts.Concurrency), make(chan error, 1)
	go func() { readErr <- Read(ctx, paths, stdin, items) }()
	if err := a.Run(ctx, items, emit); err != nil {
		cancel() // stop reading
		<-readErr
		return err
	}
	if err := <-readErr; err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// learn teaches the local model a frame's class: the user's label for the
// image, or the cloud's classification (reply may be nil), when enc made
// the payload for it (the learned codec of its bundle).
func (a *Agent) learn(ctx context.Context, enc *Encoder, name string, reply *wire.Reply, payload []byte) {
	if !a.forLocal(enc) {
		return
	}
	top1, score := -1, float32(0)
	var r *wire.Result
	if reply != nil {
		r = reply.Result(wire.Classify)
	}
	if r != nil && len(r.Classes) > 0 {
		top1, score = int(r.Classes[0].Label), r.Classes[0].Score
	}
	if err := a.opts.Local.Learn(ctx, name, payload, enc.Bundle.Shape(), top1, score); err != nil {
		a.learnErrs.Add(1)
	}
}

// forLocal reports whether enc's payloads are what the local model takes:
// the learned codec of its bundle.
func (a *Agent) forLocal(enc *Encoder) bool {
	return a.opts.Local != nil && enc.Bundle.ID == a.opts.Local.in.b.ID && enc.Codec.ID() == codec.IDLearned
}

// answerLocally answers a frame the cloud did not (or the local point's)
// with the local model, when the agent falls back to it, enc made the
// payload for it and classification was requested; otherwise it returns
// rec as it is.
func (a *Agent) answerLocally(ctx context.Context, enc *Encoder, rec Record, payload []byte, start time.Time) Record {
	if !a.opts.Fallback || !a.opts.Tasks.Has(wire.Classify) || !a.forLocal(enc) {
		return rec
	}
	p, err := a.opts.Local.Predict(context.WithoutCancel(ctx), payload, enc.Bundle.Shape())
	if err != nil {
		rec.Error = strings.TrimPrefix(rec.Error+"; local model: "+err.Error(), "; ")
		return rec
	}
	rec.Status, rec.Source = wire.StatusOK.String(), "local"
	rec.Results = &Results{Classify: []ClassResult{{p.Label, p.Class, p.Score}}}
	for _, t := range (a.opts.Tasks &^ wire.Tasks(0).With(wire.Classify)).List() {
		rec.Unserved = append(rec.Unserved, t.String())
	}
	rec.Latency.Total = ms(time.Since(start))
	return rec
}
