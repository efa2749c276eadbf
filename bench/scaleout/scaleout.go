// Package scaleout is the local proof that the cloud tier scales out and
// loses nothing when a replica goes: N cloud replicas (processes of the
// splitstream binary, sharing session-ticket keys, each with its own
// QUIC-LB server ID) behind nginx as the UDP load balancer (the stream
// module, hashing each client's address and port), and M edge agents in
// this process streaming the bundle's test set for a while. With Kill, the
// replica holding the most connections is stopped a third of the way in,
// by SIGTERM (it drains) or SIGKILL (it crashes), and started again.
//
// Every request has its own ID; the bench counts the replies per ID, so a
// request answered twice shows as a duplicate and one that never got a
// reply as lost.
package scaleout

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/splitstream/splitstream/bundle"
	"github.com/splitstream/splitstream/edge"
	"github.com/splitstream/splitstream/internal/certs"
	"github.com/splitstream/splitstream/models"
	"github.com/splitstream/splitstream/wire"
)

// ErrNoNginx is the error of a run on a machine without nginx.
var ErrNoNginx = errors.New("nginx not found")

// Synopsis and Help describe the command that runs a Config.
const (
	Synopsis = "--replicas N --edges M --duration D --kill none|drain|crash [--json] [flags]"
	Help     = "Start N cloud replicas (processes of --binary, sharing session-ticket keys, distinct\n" +
		"--server-id) behind nginx as the UDP load balancer (stream module, hash on the client's\n" +
		"address and port), and M edge agents in this process streaming the bundle's test set for\n" +
		"--duration. With --kill, the replica holding the most connections is stopped a third of\n" +
		"the way in (drain: SIGTERM, crash: SIGKILL) and started again. Prints requests, ok, lost (no reply in the end),\n" +
		"duplicates (answered twice), errors (a reply other than ok), retried, rps, p50 and p99.\n" +
		"Needs nginx and libnginx-mod-stream; every address is on loopback."
)

// Config is one run. Zero fields take the defaults that Flags shows.
type Config struct {
	Replicas, Edges int
	Duration        time.Duration
	Kill            string // none, drain or crash
	Binary          string // the splitstream binary; default: this executable
	Bundle          string // bundle directory; default: the zoo's first split bundle
	Nginx           string // nginx binary; default: found on PATH or in /usr/sbin
	Concurrency     int    // requests in flight per edge
	Images          int    // test images encoded and sent in turn
	DrainDelay      time.Duration
	Engine          string // the replicas' --engine; empty: the cloud's default
	Threads         int    // the replicas' --threads and --workers; 0: their defaults
	JSON            bool
}

// Flags registers the run's flags on fs and returns the Config they fill.
func Flags(fs *flag.FlagSet) *Config {
	c := &Config{}
	fs.IntVar(&c.Replicas, "replicas", 3, "cloud replicas (processes)")
	fs.IntVar(&c.Edges, "edges", 32, "edge agents (goroutines, one QUIC connection each)")
	fs.DurationVar(&c.Duration, "duration", 60*time.Second, "how long the edges send; requests in flight then finish")
	fs.StringVar(&c.Kill, "kill", "none", "stop one replica a third of the way in and start it again: none, drain (SIGTERM) or crash (SIGKILL)")
	fs.StringVar(&c.Binary, "binary", "", "the splitstream `binary` the replicas run (default: this executable)")
	fs.StringVar(&c.Bundle, "bundle", "", "bundle `dir` (default: the first split bundle under "+bundle.ZooDir+")")
	fs.StringVar(&c.Nginx, "nginx", "", "nginx `binary` (default: nginx on PATH, or /usr/sbin/nginx)")
	fs.IntVar(&c.Concurrency, "concurrency", 2, "requests in flight per edge")
	fs.IntVar(&c.Images, "images", 200, "test images encoded up front and sent in turn")
	fs.DurationVar(&c.DrainDelay, "drain-delay", 2*time.Second, "the replicas' --drain-delay")
	fs.StringVar(&c.Engine, "engine", "", "the replicas' --engine (default: the cloud's)")
	fs.IntVar(&c.Threads, "threads", 0, "the replicas' --threads and --workers (0: their defaults)")
	fs.BoolVar(&c.JSON, "json", false, "print one JSON object")
	return c
}

// Result is what a run measured. Requests = OK + Errors + Lost.
type Result struct {
	Replicas   int     `json:"replicas"`
	Edges      int     `json:"edges"`
	Kill       string  `json:"kill"`
	Requests   int64   `json:"requests"`
	OK         int64   `json:"ok"`
	Lost       int64   `json:"lost"`       // no reply in the end
	Duplicates int64   `json:"duplicates"` // request IDs answered more than once
	Errors     int64   `json:"errors"`     // replies other than ok, and replies to another ID
	Retried    int64   `json:"retried"`    // requests sent again: Resent + OverloadRetries
	RPS        float64 `json:"rps"`        // ok replies per second of sending
	P50MS      float64 `json:"p50_ms"`     // of ok requests, retries included
	P99MS      float64 `json:"p99_ms"`
	// Resent counts requests sent again on a new connection after theirs
	// broke; OverloadRetries those sent again after an overloaded reply.
	Resent          int64   `json:"resent"`
	OverloadRetries int64   `json:"overload_retries"`
	Connects        int64   `json:"connects"`
	GoingAway       int64   `json:"going_away"` // connections a draining replica closed
	DownS           float64 `json:"down_s"`     // from the kill until the replica was ready again
	Seconds         float64 `json:"seconds"`
	FirstError      string  `json:"first_error,omitempty"`
}

// WriteText writes the result as two lines of text, and the first failure.
func (r *Result) WriteText(w io.Writer) {
	fmt.Fprintf(w, "replicas %d, edges %d, kill %s: requests %d, ok %d, lost %d, duplicates %d, errors %d, retried %d, %.1f requests/s, p50 %.1f ms, p99 %.1f ms\n",
		r.Replicas, r.Edges, r.Kill, r.Requests, r.OK, r.Lost, r.Duplicates, r.Errors, r.Retried, r.RPS, r.P50MS, r.P99MS)
	fmt.Fprintf(w, "resent after a broken connection %d, after overloaded %d; connections %d, closed going away %d; replica down %.1f s; %.1f s\n",
		r.Resent, r.OverloadRetries, r.Connects, r.GoingAway, r.DownS, r.Seconds)
	if r.FirstError != "" {
		fmt.Fprintf(w, "first failure: %s\n", r.FirstError)
	}
}

// Main runs c and prints the result on stdout (progress on stderr).
func (c Config) Main(ctx context.Context, stdout, stderr io.Writer) error {
	r, err := Run(ctx, c, stderr)
	if err != nil {
		return err
	}
	if c.JSON {
		return json.NewEncoder(stdout).Encode(r)
	}
	r.WriteText(stdout)
	return nil
}

func (c *Config) check() error {
	switch {
	case c.Replicas < 1 || c.Edges < 1 || c.Concurrency < 1 || c.Images < 1 || c.Duration <= 0:
		return fmt.Errorf("scaleout: replicas, edges, concurrency, images and duration must be positive")
	case c.Kill != "none" && c.Kill != "drain" && c.Kill != "crash":
		return fmt.Errorf("scaleout: --kill %q: want none, drain or crash", c.Kill)
	}
	if c.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		c.Binary = exe
	}
	return nil
}

// Run runs the measurement; progress goes to progress.
func Run(ctx context.Context, c Config, progress io.Writer) (*Result, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	nginx, err := findNginx(c.Nginx)
	if err != nil {
		return nil, err
	}
	b, err := loadBundle(c.Bundle)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "splitstream-scaleout")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	set, err := certs.New(certs.DefaultHosts)
	if err == nil {
		err = set.WriteDir(filepath.Join(dir, "certs"))
	}
	if err != nil {
		return nil, err
	}
	_, cliTLS, err := set.Configs("localhost", true)
	if err != nil {
		return nil, err
	}
	key := make([]byte, 32)
	rand.Read(key)
	tickets := filepath.Join(dir, "ticket-keys")
	if err := os.WriteFile(tickets, []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
		return nil, err
	}

	// The replicas, then the balancer in front of them.
	reps := make([]*replica, c.Replicas)
	var upstreams []string
	for i := range reps {
		up, err1 := freePort("udp")
		adm, err2 := freePort("tcp")
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		r := &replica{id: i + 1, addr: loopback(up), admin: loopback(adm), binary: c.Binary,
			log: filepath.Join(dir, fmt.Sprintf("replica%d.log", i+1))}
		cd := filepath.Join(dir, "certs")
		r.args = []string{"cloud", "--listen", r.addr, "--admin", r.admin, "--bundle", b.Dir,
			"--cert", filepath.Join(cd, certs.ServerFile), "--key", filepath.Join(cd, certs.ServerKeyFile),
			"--client-ca", filepath.Join(cd, certs.CAFile), "--ticket-keys", tickets,
			"--server-id", strconv.Itoa(i + 1), "--drain-delay", c.DrainDelay.String()}
		if c.Engine != "" {
			r.args = append(r.args, "--engine", c.Engine)
		}
		if c.Threads > 0 {
			r.args = append(r.args, "--threads", strconv.Itoa(c.Threads), "--workers", strconv.Itoa(c.Threads))
		}
		reps[i] = r
		upstreams = append(upstreams, r.addr)
	}
	defer func() {
		for _, r := range reps {
			if r.cmd != nil {
				r.stop(syscall.SIGKILL)
			}
		}
	}()
	for _, r := range reps {
		if err := r.start(ctx); err != nil {
			return nil, err
		}
	}
	lbPort, err := freePort("udp")
	if err != nil {
		return nil, err
	}
	module := StreamModule
	if _, err := os.Stat(module); err != nil {
		module = ""
	}
	lb := balancer{Dir: dir, Module: module, Listen: loopback(lbPort), Replicas: upstreams, Timeout: 30 * time.Second, FailTimeoutS: 2}
	stopLB, err := lb.start(ctx, nginx)
	if err != nil {
		return nil, err
	}
	defer stopLB()
	fmt.Fprintf(progress, "bench scaleout: %d replicas ready (%s), nginx on %s; encoding %d test images\n", c.Replicas, b.Name, lb.Listen, c.Images)

	// The edges: one encoder encodes the test images once; each agent has
	// its own client (its own connection, from its own UDP port).
	enc, err := edge.NewEncoder(b, edge.EncoderOptions{Engine: models.Native})
	if err != nil {
		return nil, err
	}
	defer enc.Close()
	payloads, err := encodeTestSet(ctx, b, enc, c.Images)
	if err != nil {
		return nil, err
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var clients []*edge.Client
	var agents []*edge.Agent
	for range c.Edges {
		cl, err := edge.NewClient(lb.Listen, edge.ClientOptions{TLS: cliTLS, Logger: quiet,
			MinBackoff: 50 * time.Millisecond, MaxBackoff: time.Second, DialTimeout: time.Second, IdleTimeout: 2 * time.Second,
			BreakerThreshold: 10, BreakerCooldown: time.Second, RetryBudget: 8})
		if err != nil {
			return nil, err
		}
		defer cl.Close()
		a, err := edge.NewAgent(enc, cl, edge.AgentOptions{Concurrency: c.Concurrency})
		if err != nil {
			return nil, err
		}
		clients, agents = append(clients, cl), append(agents, a)
	}

	res := &Result{Replicas: c.Replicas, Edges: c.Edges, Kill: c.Kill}
	var (
		mu        sync.Mutex
		replies   = map[uint64]int{}
		latencies []float64
		firstErr  atomic.Value
		requests  atomic.Int64
	)
	fail := func(s string) { firstErr.CompareAndSwap(nil, s) }
	start := time.Now()
	sendUntil := start.Add(c.Duration)
	killed := make(chan error, 1)
	go func() { killed <- c.killOne(ctx, reps, start, res, progress) }()
	s := b.Shape()
	var wg sync.WaitGroup
	for e, a := range agents {
		for w := range c.Concurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; time.Now().Before(sendUntil) && ctx.Err() == nil; i += c.Concurrency {
					id := uint64(e)<<32 | uint64(i)
					h := wire.Header{Codec: uint8(enc.Codec.ID()), Tasks: b.Tasks(), Channels: uint16(s.C), Height: uint16(s.H), Width: uint16(s.W),
						RequestID: id, Bundle: b.ID}
					requests.Add(1)
					rctx, cancel := context.WithTimeout(ctx, time.Minute)
					t0 := time.Now()
					r, _, _, err := a.Send(rctx, h, payloads[(e*7+i)%len(payloads)])
					d := time.Since(t0)
					cancel()
					mu.Lock()
					switch {
					case err != nil:
						res.Lost++
						fail(err.Error())
					case r.RequestID != id:
						res.Errors++
						fail(fmt.Sprintf("request %d answered as %d", id, r.RequestID))
					case r.Status != wire.StatusOK:
						res.Errors++
						fail(r.Status.String() + ": " + r.Message)
					default:
						res.OK++
						latencies = append(latencies, float64(d.Microseconds())/1000)
					}
					if r != nil {
						if replies[r.RequestID]++; replies[r.RequestID] == 2 {
							res.Duplicates++
						}
					}
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	res.Seconds = time.Since(start).Seconds()
	if err := <-killed; err != nil {
		return nil, err
	}
	res.Requests = requests.Load()
	res.RPS = float64(res.OK) / min(res.Seconds, c.Duration.Seconds())
	slices.Sort(latencies)
	res.P50MS, res.P99MS = percentile(latencies, 50), percentile(latencies, 99)
	for i, cl := range clients {
		st, as := cl.Stats(), agents[i].Stats()
		res.Resent += st.Resent
		res.Connects += st.Connects
		res.GoingAway += st.GoingAway
		res.OverloadRetries += as.Retries
	}
	res.Retried = res.Resent + res.OverloadRetries
	if e, _ := firstErr.Load().(string); e != "" {
		res.FirstError = e
	}
	return res, nil
}

// killOne stops the replica holding the most connections a third of the
// way into the run, as c.Kill says, and starts it again; it records how
// long it was down.
func (c *Config) killOne(ctx context.Context, reps []*replica, start time.Time, res *Result, progress io.Writer) error {
	if c.Kill == "none" {
		return nil
	}
	select {
	case <-time.After(time.Until(start.Add(c.Duration / 3))):
	case <-ctx.Done():
		return nil
	}
	r := busiest(reps)
	sig := map[string]syscall.Signal{"drain": syscall.SIGTERM, "crash": syscall.SIGKILL}[c.Kill]
	t0 := time.Now()
	fmt.Fprintf(progress, "bench scaleout: %.1f s: %s replica %d (%v)\n", t0.Sub(start).Seconds(), c.Kill, r.id, sig)
	r.stop(sig)
	fmt.Fprintf(progress, "bench scaleout: %.1f s: replica %d exited; starting it again\n", time.Since(start).Seconds(), r.id)
	if err := r.start(ctx); err != nil {
		return err
	}
	res.DownS = time.Since(t0).Seconds()
	fmt.Fprintf(progress, "bench scaleout: %.1f s: replica %d ready again\n", time.Since(start).Seconds(), r.id)
	return nil
}

func loadBundle(dir string) (*bundle.Bundle, error) {
	if dir == "" {
		return bundle.FirstSplit(bundle.ZooDir)
	}
	return bundle.Load(dir)
}

// encodeTestSet encodes the first n images of the bundle's test set (in
// turn, when it has fewer).
func encodeTestSet(ctx context.Context, b *bundle.Bundle, enc *edge.Encoder, n int) ([][]byte, error) {
	ts, err := b.TestSet()
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for i := range min(n, len(ts.Images)) {
		data, err := os.ReadFile(filepath.Join(ts.Dir, ts.Images[i].File))
		if err != nil {
			return nil, err
		}
		payload, _, err := enc.Encode(ctx, data)
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", ts.Images[i].File, err)
		}
		out = append(out, payload)
	}
	return out, nil
}

func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	k := int(float64(len(sorted))*p/100+0.999999) - 1
	return sorted[max(0, min(k, len(sorted)-1))]
}
