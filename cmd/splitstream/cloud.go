package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/splitstream/splitstream/cloud"
	"github.com/splitstream/splitstream/internal/certs"
	"github.com/splitstream/splitstream/models"
)

func init() {
	register(command{name: "cloud", summary: "serve the task heads of one or more bundles over QUIC", run: runCloud})
}

func runCloud(ctx context.Context, args []string) error {
	fs := newFlagSet("cloud", "--listen ADDR --bundle DIR [--bundle DIR ...] --cert FILE --key FILE [flags]",
		"Serve every head of every bundle over QUIC (protocol v1, docs/PROTOCOL.md): one stream per\n"+
			"request, the requested tasks run on one decoded latent with dynamic batching per graph.\n"+
			"A full queue answers \"overloaded\". SIGINT/SIGTERM finish the requests in flight, then exit.\n"+
			"Make development certificates with `splitstream certs init DIR`.")
	listen := fs.String("listen", ":4433", "UDP address to listen on")
	var dirs listFlag
	fs.Var(&dirs, "bundle", "bundle directories (repeatable, or comma-separated)")
	eng := engineFlags(fs, models.Auto)
	cert := fs.String("cert", "", "server certificate (PEM)")
	key := fs.String("key", "", "server private key (PEM)")
	clientCA := fs.String("client-ca", "", "CA whose client certificates are required (mutual TLS); empty: no client authentication")
	metricsAddr := fs.String("metrics", "", "TCP address for /metrics and /healthz (empty: off)")
	var so cloud.Options
	fs.IntVar(&so.QueueSize, "queue", 64, "requests that may wait for a worker; more are answered overloaded")
	fs.IntVar(&so.Workers, "workers", 0, "requests decoded and run at once (0: one per CPU)")
	maxBatch := fs.Int("max-batch", cloud.DefaultMaxBatch, "most requests per graph run (1: no batching)")
	batchWait := fs.Duration("batch-wait", 0, "how long a batch that is not full waits for more requests once it could run (0: none; batches form from requests that queue while the engine is busy)")
	verbose := fs.Bool("v", false, "log every refused request")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if len(dirs) == 0 {
		fs.Usage()
		return errUsage
	}
	tlsConf, err := certs.LoadServerConfig(*cert, *key, *clientCA)
	if err != nil {
		return fmt.Errorf("%w (make development ones with `splitstream certs init DIR`)", err)
	}
	level := map[bool]slog.Level{false: slog.LevelInfo, true: slog.LevelDebug}[*verbose]
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ms, err := cloud.LoadModels(dirs, cloud.ModelOptions{Engine: eng.Kind, EngineOptions: eng.Options,
		Batch: cloud.BatchOptions{MaxBatch: *maxBatch, Wait: *batchWait}})
	if err != nil {
		return err
	}
	for _, m := range ms {
		defer m.Close()
		log.Info("bundle loaded", "name", m.Bundle.Name, "kind", m.Bundle.Kind, "hash", m.Bundle.Hash, "tasks", m.Tasks().List(), "engine", m.Engine())
	}
	so.Logger = log
	srv, err := cloud.New(ms, so)
	if err != nil {
		return err
	}
	if *metricsAddr != "" {
		go func() {
			if err := srv.ServeMetrics(ctx, *metricsAddr); err != nil {
				log.Error("metrics server", "err", err)
			}
		}()
		log.Info("metrics", "addr", *metricsAddr)
	}
	start := time.Now()
	err = srv.ListenAndServe(ctx, *listen, tlsConf)
	log.Info("cloud stopped", "after", time.Since(start).Round(time.Second))
	return err
}
