// Package load measures the cloud under a fleet of edges: N edge agents
// (goroutines, each with its own QUIC connection, window and retries) send
// M requests each to one cloud on loopback, and the run reports how many
// ended ok or were lost, how often the cloud answered overloaded and the
// edges retried, the goodput and the latency percentiles.
//
// The bundle is internal/testbundle, whose graphs sleep Delay per run
// instead of computing, so the cloud's capacity is set by Workers and
// Delay (about Workers / (2 x Delay) requests/s: the trunk, then the heads
// concurrently) and the measurement is of the runtime's queueing, flow
// control and transport, not of the machine's arithmetic. The edges send
// payloads encoded once up front.
package load

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/splitstream/splitstream/bundle"
	"github.com/splitstream/splitstream/bundle/bundletest"
	"github.com/splitstream/splitstream/cloud"
	"github.com/splitstream/splitstream/codec"
	"github.com/splitstream/splitstream/edge"
	"github.com/splitstream/splitstream/internal/certs"
	"github.com/splitstream/splitstream/wire"
)

// Config is one load run. The zero value of each field gives its default.
type Config struct {
	Edges       int           // edge agents; default 32
	Images      int           // requests per edge; default 500
	Concurrency int           // window (requests in flight) per edge; default 4
	Queue       int           // the cloud's queue; 0: its default (64); negative: unbounded (never overloaded)
	Workers     int           // the cloud's workers; 0: its default (one per CPU)
	Delay       time.Duration // time each graph run takes; default 2 ms
	MaxBatch    int           // the cloud's dynamic batching per graph; 0 or 1: none
	Timeout     time.Duration // per request on the edge, retries included; default 60 s
	JSON        bool          // Main prints one JSON object
}

// Synopsis and Help describe the command that runs a Config.
const (
	Synopsis = "[--edges N] [--images M] [flags]"
	Help     = "Run N edge agents (goroutines, one QUIC connection each) sending M requests each to one\n" +
		"cloud on loopback, with the test bundle whose graphs take --delay each (package bench/load)."
)

// Flags registers the run's flags on fs and returns the Config they fill.
func Flags(fs *flag.FlagSet) *Config {
	c := &Config{}
	fs.IntVar(&c.Edges, "edges", 32, "edge agents")
	fs.IntVar(&c.Images, "images", 500, "requests per edge")
	fs.IntVar(&c.Concurrency, "concurrency", 4, "window of requests in flight per edge")
	fs.IntVar(&c.Queue, "queue", 0, "the cloud's queue (0: its default, 64; -1: unbounded)")
	fs.IntVar(&c.Workers, "workers", 0, "the cloud's workers (0: one per CPU)")
	fs.DurationVar(&c.Delay, "delay", 0, "time each graph run takes (0: 2ms)")
	fs.IntVar(&c.MaxBatch, "max-batch", 1, "the cloud's most requests per graph run (1: no batching)")
	fs.BoolVar(&c.JSON, "json", false, "print one JSON object")
	return c
}

// Main runs c and prints the result on w.
func (c Config) Main(ctx context.Context, w io.Writer) error {
	r, err := Run(ctx, c)
	if err != nil {
		return err
	}
	if c.JSON {
		return json.NewEncoder(w).Encode(r)
	}
	r.WriteText(w)
	return nil
}

// Result is what a run measured. Lost counts requests that did not end ok
// (an error, or overloaded after every retry).
type Result struct {
	Edges             int     `json:"edges"`
	Requests          int     `json:"requests"`
	OK                int     `json:"ok"`
	Lost              int     `json:"lost"`
	OverloadedReplies int64   `json:"overloaded_replies"`
	Retries           int64   `json:"retries"`
	RPS               float64 `json:"rps"`
	P50MS             float64 `json:"p50_ms"`
	P99MS             float64 `json:"p99_ms"`
	// CloudPeakRSSMB is the peak resident memory of this process, which
	// runs the cloud and the edges' goroutines, sampled during the run.
	CloudPeakRSSMB float64 `json:"cloud_peak_rss_mb"`
	Queue          int     `json:"queue"`
	// MeanBatch is the mean number of requests per graph run in the cloud.
	MeanBatch  float64 `json:"mean_batch"`
	FirstError string  `json:"first_error,omitempty"`
}

// WriteText writes the result as a line of text, and the first failure.
func (r *Result) WriteText(w io.Writer) {
	fmt.Fprintf(w, "edges %d, requests %d, ok %d, lost %d, overloaded replies %d, retries %d, %.1f requests/s, p50 %.1f ms, p99 %.1f ms, peak RSS %.0f MB, mean batch %.2f\n",
		r.Edges, r.Requests, r.OK, r.Lost, r.OverloadedReplies, r.Retries, r.RPS, r.P50MS, r.P99MS, r.CloudPeakRSSMB, r.MeanBatch)
	if r.FirstError != "" {
		fmt.Fprintf(w, "first failure: %s\n", r.FirstError)
	}
}

func (c *Config) setDefaults() {
	if c.Edges <= 0 {
		c.Edges = 32
	}
	if c.Images <= 0 {
		c.Images = 500
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 4
	}
	if c.Delay <= 0 {
		c.Delay = 2 * time.Millisecond
	}
	if c.Timeout <= 0 {
		c.Timeout = 60 * time.Second
	}
}

// Run runs one load measurement.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg.setDefaults()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir, err := os.MkdirTemp("", "splitstream-load")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := bundletest.Write(dir, "load"); err != nil {
		return nil, err
	}
	b, err := bundle.Load(dir)
	if err != nil {
		return nil, err
	}
	engines := &bundletest.Engines{Delay: cfg.Delay}
	model, err := cloud.LoadModel(b, cloud.ModelOptions{Open: engines.Open, Batch: cloud.BatchOptions{MaxBatch: cfg.MaxBatch}})
	if err != nil {
		return nil, err
	}
	defer model.Close()
	set, err := certs.New(certs.DefaultHosts)
	if err != nil {
		return nil, err
	}
	srvTLS, cliTLS, err := set.Configs("localhost", true)
	if err != nil {
		return nil, err
	}
	queue := cfg.Queue
	if queue < 0 {
		queue = cfg.Edges*cfg.Concurrency + 1 // more than can ever wait
	}
	reg := prometheus.NewRegistry()
	srv, err := cloud.New([]*cloud.Model{model}, cloud.Options{QueueSize: queue, Workers: cfg.Workers, Logger: quiet, Registry: reg})
	if err != nil {
		return nil, err
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	sctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx, pc, srvTLS) }()
	defer func() { stop(); <-served; pc.Close() }()

	enc, err := edge.NewEncoder(b, edge.EncoderOptions{Open: engines.Open})
	if err != nil {
		return nil, err
	}
	defer enc.Close()
	payloads, err := samplePayloads(ctx, enc, 16)
	if err != nil {
		return nil, err
	}
	s := b.Shape()
	res := &Result{Edges: cfg.Edges, Requests: cfg.Edges * cfg.Images, Queue: cfg.Queue}
	var (
		mu        sync.Mutex
		latencies []float64
		ok        atomic.Int64
		firstErr  atomic.Value
		agents    []*edge.Agent
	)
	for range cfg.Edges {
		client, err := edge.NewClient(pc.LocalAddr().String(), edge.ClientOptions{TLS: cliTLS, Logger: quiet})
		if err != nil {
			return nil, err
		}
		defer client.Close()
		a, err := edge.NewAgent(enc, client, edge.AgentOptions{Concurrency: cfg.Concurrency, Timeout: cfg.Timeout})
		if err != nil {
			return nil, err
		}
		agents = append(agents, a)
	}
	peak := sampleRSS()
	start := time.Now()
	var wg sync.WaitGroup
	for e, a := range agents {
		for w := range cfg.Concurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < cfg.Images; i += cfg.Concurrency {
					h := wire.Header{Codec: uint8(codec.IDLearned), Tasks: wire.AllTasks, Channels: uint16(s.C), Height: uint16(s.H), Width: uint16(s.W),
						RequestID: uint64(e)<<32 | uint64(i), Bundle: b.ID}
					rctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
					t0 := time.Now()
					r, _, _, err := a.Send(rctx, h, payloads[i%len(payloads)])
					d := time.Since(t0)
					cancel()
					switch {
					case err != nil:
						firstErr.CompareAndSwap(nil, err.Error())
					case r.Status != wire.StatusOK:
						firstErr.CompareAndSwap(nil, r.Status.String()+": "+r.Message)
					default:
						ok.Add(1)
						mu.Lock()
						latencies = append(latencies, float64(d.Microseconds())/1000)
						mu.Unlock()
					}
				}
			}()
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	res.CloudPeakRSSMB = peak() / (1 << 20)
	res.OK = int(ok.Load())
	res.Lost = res.Requests - res.OK
	res.RPS = float64(res.OK) / elapsed.Seconds()
	for _, a := range agents {
		st := a.Stats()
		res.OverloadedReplies += st.OverloadedReplies
		res.Retries += st.Retries
	}
	slices.Sort(latencies)
	res.P50MS, res.P99MS = percentile(latencies, 50), percentile(latencies, 99)
	if e, _ := firstErr.Load().(string); e != "" {
		res.FirstError = e
	}
	res.MeanBatch = meanBatch(reg)
	return res, nil
}

// meanBatch is the mean of the cloud's batch-size histogram over every
// graph.
func meanBatch(reg *prometheus.Registry) float64 {
	mfs, _ := reg.Gather()
	var sum float64
	var n uint64
	for _, mf := range mfs {
		if mf.GetName() != "splitstream_cloud_batch_size" {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetHistogram().GetSampleSum()
			n += m.GetHistogram().GetSampleCount()
		}
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	k := int(float64(len(sorted))*p/100+0.999999) - 1
	return sorted[max(0, min(k, len(sorted)-1))]
}

// samplePayloads encodes n small test images.
func samplePayloads(ctx context.Context, enc *edge.Encoder, n int) ([][]byte, error) {
	var out [][]byte
	for i := range n {
		img := image.NewRGBA(image.Rect(0, 0, bundletest.Size, bundletest.Size))
		for p := range bundletest.Size * bundletest.Size {
			img.Set(p%bundletest.Size, p/bundletest.Size, color.RGBA{uint8(37 * i), uint8(p * 3), uint8(i * p), 255})
		}
		var buf bytes.Buffer
		if err := png.Encode(&buf, img); err != nil {
			return nil, err
		}
		payload, _, err := enc.Encode(ctx, buf.Bytes())
		if err != nil {
			return nil, fmt.Errorf("encode sample %d: %w", i, err)
		}
		out = append(out, payload)
	}
	return out, nil
}

// sampleRSS samples this process's resident memory every 20 ms until the
// returned function is called, which returns the peak in bytes.
func sampleRSS() func() float64 {
	var peak atomic.Int64
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			if r := rss(); r > peak.Load() {
				peak.Store(r)
			}
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return func() float64 { close(done); <-stopped; return float64(peak.Load()) }
}

// rss reads VmRSS from /proc/self/status (0 where there is none).
func rss() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
