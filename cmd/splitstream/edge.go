package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/splitstream/splitstream/codec"
	"github.com/splitstream/splitstream/edge"
	"github.com/splitstream/splitstream/internal/certs"
	"github.com/splitstream/splitstream/models/bundle"
	"github.com/splitstream/splitstream/wire"
)

func init() {
	register(command{name: "edge", summary: "encode images and stream them to a cloud server over QUIC", run: runEdge})
}

// parseTasks parses a comma-separated task list ("" means none given).
func parseTasks(s string) (wire.Tasks, error) {
	var ts wire.Tasks
	if s == "" {
		return 0, nil
	}
	for _, name := range strings.Split(s, ",") {
		t, err := wire.ParseTask(strings.TrimSpace(name))
		if err != nil {
			return 0, err
		}
		ts = ts.With(t)
	}
	return ts, nil
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func runEdge(ctx context.Context, args []string) error {
	fs := newFlagSet("edge", "--server ADDR --bundle DIR --input PATH|DIR|- [flags]",
		"Read PNG and JPEG images (files, folders, or a stream of files on stdin with --input -),\n"+
			"preprocess them as the bundle's manifest says, run the encoder, entropy-code the latent\n"+
			"and send each on its own stream of one QUIC connection, several in flight. Writes one\n"+
			"JSON line per image (results, bytes sent, latency breakdown) and a summary table.")
	server := fs.String("server", "localhost:4433", "cloud server address (host:port)")
	dir := fs.String("bundle", "", "bundle directory")
	var inputs multiFlag
	fs.Var(&inputs, "input", "image file, folder of images, or - for a stream of images on stdin (repeatable)")
	taskList := fs.String("tasks", "", "comma-separated tasks: classify,detect,segment (default: all the bundle has)")
	out := fs.String("out", "-", "JSON lines output file (- for stdout)")
	concurrency := fs.Int("concurrency", 4, "requests in flight")
	metricsAddr := fs.String("metrics", "", "TCP address for the edge's /metrics (empty: off)")
	caFile := fs.String("ca", "", "CA that signed the server certificate (PEM; empty: system roots)")
	certFile := fs.String("cert", "", "client certificate for mutual TLS (PEM)")
	keyFile := fs.String("key", "", "client private key (PEM)")
	serverName := fs.String("server-name", "", "name to verify the server certificate against (default: the host of --server)")
	codecSpec := fs.String("codec", "", "send with a baseline codec instead of the bundle's: raw-f32, int8-zstd (split), png, jpeg[:Q], webp[:Q] (full)")
	deadline := fs.Duration("deadline", 0, "time the cloud has for each request (0: none)")
	timeout := fs.Duration("timeout", 30*time.Second, "time the edge waits for each request, reconnecting and retries included")
	maxPixels := fs.Int("max-pixels", edge.DefaultMaxPixels, "largest input image (width x height), checked from its header before decoding")
	maxRetries := fs.Int("max-retries", 20, "times one request is sent again after overloaded replies (waiting the cloud's retry-after hint)")
	retryBudget := fs.Int("retry-budget", 4, "times one request is sent again on a fresh connection after its connection broke before a reply")
	breaker := fs.Int("breaker", 3, "failed connection attempts in a row that open the circuit breaker (requests then fail at once for 10 s)")
	eng := addEngineFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" || len(inputs) == 0 {
		fs.Usage()
		return errUsage
	}
	b, err := bundle.Load(*dir)
	if err != nil {
		return err
	}
	ts, err := parseTasks(*taskList)
	if err != nil {
		return err
	}
	var c codec.Codec
	if *codecSpec != "" {
		if c, err = codec.Baseline(*codecSpec); err != nil {
			return err
		}
	}
	name := *serverName
	if name == "" {
		host, _, err := net.SplitHostPort(*server)
		if err != nil {
			return fmt.Errorf("--server %q: %w", *server, err)
		}
		name = host
	}
	var pems [3][]byte
	for i, f := range []string{*caFile, *certFile, *keyFile} {
		if pems[i], err = certs.ReadFile(f); err != nil {
			return err
		}
	}
	tlsConf, err := certs.ClientConfig(pems[0], pems[1], pems[2], name)
	if err != nil {
		return err
	}
	enc, err := edge.NewEncoder(b, edge.EncoderOptions{Engine: *eng.kind, EngineOptions: eng.options(), Codec: c, MaxPixels: *maxPixels})
	if err != nil {
		return err
	}
	defer enc.Close()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	client, err := edge.NewClient(*server, edge.ClientOptions{TLS: tlsConf, Logger: log, RetryBudget: *retryBudget, BreakerThreshold: *breaker})
	if err != nil {
		return err
	}
	defer client.Close()
	agent, err := edge.NewAgent(enc, client, edge.AgentOptions{Tasks: ts, Concurrency: *concurrency, Deadline: *deadline, Timeout: *timeout, MaxRetries: *maxRetries})
	if err != nil {
		return err
	}
	var metrics *edge.Metrics
	if *metricsAddr != "" {
		reg := prometheus.NewRegistry()
		metrics = edge.NewMetrics(reg)
		ln, err := net.Listen("tcp", *metricsAddr)
		if err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
		srv := &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(ln)
		defer srv.Close()
	}
	paths, err := edge.Paths(inputs)
	if err != nil {
		return err
	}
	var w io.Writer = os.Stdout
	summaryOut := io.Writer(os.Stderr)
	if *out != "-" {
		f, err := os.Create(*out)
		if err != nil {
			return err
		}
		defer f.Close()
		w, summaryOut = f, os.Stdout // one write per line: a killed edge leaves whole lines
	}
	jw := json.NewEncoder(w)
	items := make(chan edge.Item, *concurrency)
	readErr := make(chan error, 1)
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	go func() { readErr <- edge.Read(runCtx, paths, os.Stdin, items) }()

	var sum edge.Summary
	var done, failed atomic.Int64
	start := time.Now()
	progress := isTerminal(os.Stderr)
	stopProgress := make(chan struct{})
	if progress {
		go func() {
			t := time.NewTicker(200 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-t.C:
					n := done.Load()
					fmt.Fprintf(os.Stderr, "\r%d images, %d errors, %.1f images/s ", n, failed.Load(), float64(n)/time.Since(start).Seconds())
				case <-stopProgress:
					fmt.Fprint(os.Stderr, "\r\033[K")
					return
				}
			}
		}()
	}
	var writeErr error
	runErr := agent.Run(runCtx, items, func(r edge.Record) {
		done.Add(1)
		if r.Status != "ok" {
			failed.Add(1)
		}
		sum.Add(r)
		if metrics != nil {
			metrics.Observe(r)
		}
		if err := jw.Encode(r); err != nil && writeErr == nil {
			writeErr = err
		}
	})
	close(stopProgress)
	if progress {
		time.Sleep(10 * time.Millisecond) // let the progress line clear
	}
	sum.Write(summaryOut)
	st, as := client.Stats(), agent.Stats()
	fmt.Fprintf(summaryOut, "connections %d (0-RTT resumed %d), resent after a broken connection %d, overloaded replies %d, retries %d, %.1f s\n",
		st.Connects, st.Resumed0RTT, st.Resent, as.OverloadedReplies, as.Retries, time.Since(start).Seconds())
	if runErr != nil {
		stopRun()
		<-readErr
		return runErr
	}
	if err := <-readErr; err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	if writeErr != nil {
		return writeErr
	}
	if sum.Errors > 0 {
		return fmt.Errorf("%d of %d images failed", sum.Errors, sum.Count)
	}
	return nil
}
