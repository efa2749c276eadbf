package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/splitstream/splitstream/cloud"
	"github.com/splitstream/splitstream/edge"
	"github.com/splitstream/splitstream/internal/certs"
	"github.com/splitstream/splitstream/wire"
)

func init() {
	register(command{name: "demo", summary: "run cloud and edge on loopback with the shipped bundle and its test images", run: runDemo})
}

// demoResult is demo's --json object: eval's keys and the total latency.
type demoResult struct {
	evalResult
	Latency edge.Percentiles            `json:"latency_ms"`
	Stages  map[string]edge.Percentiles `json:"stages_ms"`
}

func runDemo(ctx context.Context, args []string) error {
	fs := newFlagSet("demo", "[--json] [--bundle DIR] [flags]",
		"Start a cloud server and an edge agent in one process on loopback (QUIC with mutual TLS\n"+
			"from ephemeral in-memory certificates), send the bundle's test images through the whole\n"+
			"split path, and print the task metrics, the bytes per image and the latency breakdown.")
	dir := fs.String("bundle", "", "bundle directory (default: the first split bundle under models/zoo)")
	asJSON := fs.Bool("json", false, "print one JSON object: top1, map50, miou, bytes_per_image, images, latency_ms {p50, p95, p99}, stages_ms")
	concurrency := fs.Int("concurrency", 4, "requests in flight")
	limit := fs.Int("limit", 0, "send only the first N test images (0: all)")
	eng := addEngineFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	b, err := loadBundle(*dir)
	if err != nil {
		return err
	}
	sc, err := newScorer(b, "")
	if err != nil {
		return err
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	// Cloud.
	set, err := certs.New(certs.DefaultHosts)
	if err != nil {
		return err
	}
	srvTLS, cliTLS, err := set.Configs("localhost", true)
	if err != nil {
		return err
	}
	model, err := cloud.LoadModel(b, cloud.ModelOptions{Engine: *eng.kind, EngineOptions: eng.options()})
	if err != nil {
		return err
	}
	defer model.Close()
	srv, err := cloud.New([]*cloud.Model{model}, cloud.Options{Logger: quiet})
	if err != nil {
		return err
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer pc.Close()
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx, pc, srvTLS) }()
	defer func() { stop(); <-served }()

	// Edge.
	enc, err := edge.NewEncoder(b, edge.EncoderOptions{Engine: *eng.kind, EngineOptions: eng.options()})
	if err != nil {
		return err
	}
	defer enc.Close()
	client, err := edge.NewClient(pc.LocalAddr().String(), edge.ClientOptions{TLS: cliTLS, Logger: quiet})
	if err != nil {
		return err
	}
	defer client.Close()
	agent, err := edge.NewAgent(enc, client, edge.AgentOptions{Concurrency: *concurrency})
	if err != nil {
		return err
	}
	n := len(sc.ts.Images)
	if *limit > 0 {
		n = min(n, *limit)
	}
	var paths []string
	for _, im := range sc.ts.Images[:n] {
		paths = append(paths, filepath.Join(sc.ts.Dir, im.File))
	}
	items := make(chan edge.Item, *concurrency)
	go edge.Read(ctx, paths, nil, items)
	var sum edge.Summary
	var firstErr error
	bytes := 0
	start := time.Now()
	records := make([]*edge.Record, n)
	agent.Run(ctx, items, func(r edge.Record) {
		sum.Add(r)
		records[r.Index] = &r
		if r.Status != "ok" && firstErr == nil {
			firstErr = fmt.Errorf("%s: %s: %s", r.Image, r.Status, r.Error)
		}
	})
	elapsed := time.Since(start)
	if firstErr != nil {
		return firstErr
	}
	for i, r := range records {
		if r == nil {
			return fmt.Errorf("no result for %s", paths[i])
		}
		bytes += r.Bytes - wire.HeaderSize // payload only, as eval and the manifest count
		if err := sc.Add(i, r.Reply.Results, nil); err != nil {
			return err
		}
	}
	res := demoResult{evalResult: sc.result(bytes), Latency: sum.Latency()["total"], Stages: sum.Latency()}
	if *asJSON {
		return json.NewEncoder(os.Stdout).Encode(res)
	}
	printMetrics(b, res.evalResult, *eng.kind)
	fmt.Printf("  (each request also carries a %d-byte header)\n\n", wire.HeaderSize)
	sum.Write(os.Stdout)
	st := client.Stats()
	fmt.Printf("%d images in %.1f s over QUIC on loopback (%d in flight, %d connection)\n", n, elapsed.Seconds(), *concurrency, st.Connects)
	return nil
}
