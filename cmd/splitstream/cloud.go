package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/splitstream/splitstream/cloud"
	"github.com/splitstream/splitstream/internal/certs"
	"github.com/splitstream/splitstream/models/bundle"
	"github.com/splitstream/splitstream/wire"
)

func init() {
	register(command{name: "cloud", summary: "serve the task heads of one or more bundles over QUIC", run: runCloud})
}

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func runCloud(ctx context.Context, args []string) error {
	fs := newFlagSet("cloud", "--listen ADDR --bundle DIR [--bundle DIR ...] --cert FILE --key FILE [flags]",
		"Serve every head of every bundle over QUIC (protocol v1, docs/PROTOCOL.md): one stream per\n"+
			"request, the requested tasks run on one decoded latent with dynamic batching per graph.\n"+
			"A full queue answers \"overloaded\". SIGINT/SIGTERM finish the requests in flight, then exit.\n"+
			"Make development certificates with `splitstream certs init DIR`.")
	listen := fs.String("listen", ":4433", "UDP address to listen on")
	var dirs multiFlag
	fs.Var(&dirs, "bundle", "bundle directory (repeatable)")
	eng := addEngineFlags(fs)
	cert := fs.String("cert", "", "server certificate (PEM)")
	key := fs.String("key", "", "server private key (PEM)")
	clientCA := fs.String("client-ca", "", "CA whose client certificates are required (mutual TLS); empty: no client authentication")
	metricsAddr := fs.String("metrics", "", "TCP address for /metrics and /healthz (empty: off)")
	queue := fs.Int("queue", 64, "requests that may wait for a worker; more are answered overloaded")
	workers := fs.Int("workers", 0, "requests decoded and run at once (0: one per CPU)")
	maxBatch := fs.Int("max-batch", cloud.DefaultMaxBatch, "most requests per graph run (1: no batching)")
	batchWait := fs.Duration("batch-wait", 0, "how long a batch that is not full waits for more requests once it could run (0: none; batches form from requests that queue while the engine is busy)")
	verbose := fs.Bool("v", false, "log every refused request")
	var lim cloud.Options
	fs.IntVar(&lim.MaxConns, "max-conns", 1024, "QUIC connections held at once; more are refused in the handshake")
	fs.IntVar(&lim.MaxConnsPerAddr, "max-conns-per-addr", 128, "connections from one IP address")
	fs.Int64Var(&lim.MaxStreams, "max-streams", 128, "requests one connection may have open at once (QUIC stream limit)")
	fs.Int64Var(&lim.MaxHandlers, "max-handlers", 4096, "streams served at once over all connections; more are reset (code 3)")
	fs.Int64Var(&lim.MaxInflightBytes, "max-inflight-bytes", 256<<20, "payload bytes held by all requests in flight; more are answered overloaded")
	maxPayload := fs.Uint("max-payload", 16<<20, "cap on a request's payload; each bundle and codec has a lower limit from its shape")
	fs.DurationVar(&lim.HeaderTimeout, "header-timeout", 5*time.Second, "time a stream has to deliver its 64-byte header")
	fs.DurationVar(&lim.ReadTimeout, "read-timeout", 10*time.Second, "time a stream has to deliver its whole request (and to take its reply)")
	fs.DurationVar(&lim.IdleTimeout, "idle-timeout", 30*time.Second, "a connection silent this long is closed")
	ticketKeys := fs.String("ticket-keys", "", "file of TLS session-ticket keys (64 hex digits a line, first encrypts) shared by restarts and replicas, so 0-RTT survives them (empty: per process)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if len(dirs) == 0 {
		return errors.New("no --bundle given")
	}
	if *cert == "" || *key == "" {
		return errors.New("--cert and --key are required (make development ones with `splitstream certs init DIR`)")
	}
	certPEM, err := certs.ReadFile(*cert)
	if err != nil {
		return err
	}
	keyPEM, err := certs.ReadFile(*key)
	if err != nil {
		return err
	}
	caPEM, err := certs.ReadFile(*clientCA)
	if err != nil {
		return err
	}
	tlsConf, err := certs.ServerConfig(certPEM, keyPEM, caPEM)
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	var ms []*cloud.Model
	defer func() {
		for _, m := range ms {
			m.Close()
		}
	}()
	for _, d := range dirs {
		b, err := bundle.Load(d)
		if err != nil {
			return err
		}
		m, err := cloud.LoadModel(b, cloud.ModelOptions{Engine: *eng.kind, EngineOptions: eng.options(),
			Batch: cloud.BatchOptions{MaxBatch: *maxBatch, Wait: *batchWait}})
		if err != nil {
			return err
		}
		ms = append(ms, m)
		log.Info("bundle loaded", "name", b.Name, "kind", b.Kind, "hash", b.Hash, "tasks", m.Tasks().String())
	}
	lim.QueueSize, lim.Workers, lim.Logger, lim.MaxPayload = *queue, *workers, log, uint32(min(*maxPayload, wire.MaxPayload))
	if *ticketKeys != "" {
		if lim.TicketKeys, err = cloud.LoadTicketKeys(*ticketKeys); err != nil {
			return err
		}
	}
	srv, err := cloud.New(ms, lim)
	if err != nil {
		return err
	}
	if *metricsAddr != "" {
		serve, err := srv.ListenMetrics(ctx, *metricsAddr)
		if err != nil {
			return err
		}
		go func() {
			if err := serve(); err != nil {
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
