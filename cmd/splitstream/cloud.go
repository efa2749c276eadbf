package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/splitstream/splitstream/cloud"
	"github.com/splitstream/splitstream/cloud/quiclb"
	"github.com/splitstream/splitstream/internal/certs"
	"github.com/splitstream/splitstream/models"
	"github.com/splitstream/splitstream/wire"
)

func init() {
	register(command{name: "cloud", summary: "serve the task heads of one or more bundles over QUIC", run: runCloud})
}

func runCloud(ctx context.Context, args []string) error {
	fs := newFlagSet("cloud", "--listen ADDR --bundle DIR [--bundle DIR ...] --cert FILE --key FILE [flags]",
		"Serve every head of every bundle over QUIC (protocol v1, docs/PROTOCOL.md): one stream per\n"+
			"request, the requested tasks run on one decoded latent with dynamic batching per graph.\n"+
			"A full queue answers \"overloaded\" with a retry-after hint. Every limit below bounds the\n"+
			"server's memory whatever peers claim (docs/PROTOCOL.md). SIGINT/SIGTERM finish the\n"+
			"requests in flight, then exit. Make development certificates with `splitstream certs init DIR`.")
	listen := fs.String("listen", ":4433", "UDP address to listen on")
	var dirs listFlag
	fs.Var(&dirs, "bundle", "bundle directories (repeatable, or comma-separated)")
	eng := engineFlags(fs, models.Auto)
	cert := fs.String("cert", "", "server certificate (PEM)")
	key := fs.String("key", "", "server private key (PEM)")
	clientCA := fs.String("client-ca", "", "CA whose client certificates are required (mutual TLS); empty: no client authentication")
	maxBatch := fs.Int("max-batch", cloud.DefaultMaxBatch, "most requests per graph run (1: no batching)")
	batchWait := fs.Duration("batch-wait", 0, "how long a batch that is not full waits for more requests once it could run (0: none; batches form from requests that queue while the engine is busy)")
	verbose := fs.Bool("v", false, "log every refused request")
	so := cloudLimitFlags(fs)
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
	so.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: map[bool]slog.Level{false: slog.LevelInfo, true: slog.LevelDebug}[*verbose]}))
	ms, err := cloud.LoadModels(dirs, cloud.ModelOptions{Engine: eng.Kind, EngineOptions: eng.Options,
		Batch: cloud.BatchOptions{MaxBatch: *maxBatch, Wait: *batchWait}})
	if err != nil {
		return err
	}
	for _, m := range ms {
		defer m.Close()
	}
	srv, err := cloud.New(ms, *so)
	if err != nil {
		return err
	}
	start := time.Now()
	err = srv.ListenAndServe(ctx, *listen, tlsConf)
	so.Logger.Info("cloud stopped", "after", time.Since(start).Round(time.Second))
	return err
}

// cloudLimitFlags are the server's queue and limits, with the package's
// defaults, and --ticket-keys.
func cloudLimitFlags(fs *flag.FlagSet) *cloud.Options {
	so := cloud.DefaultOptions()
	fs.StringVar(&so.AdminAddr, "admin", "", "TCP address for /livez, /readyz, /healthz and /metrics (empty: off)")
	fs.StringVar(&so.AdminAddr, "metrics", "", "the same as --admin (its older name)")
	fs.DurationVar(&so.DrainDelay, "drain-delay", 0, "on SIGTERM, keep serving this long with /readyz failing before draining, so a load balancer moves away")
	fs.DurationVar(&so.ShutdownTimeout, "shutdown-timeout", so.ShutdownTimeout, "after the drain delay, how long requests in flight may take before connections close")
	fs.Func("server-id", "put this replica's ID (0-65535, or an IPv4 address whose low 16 bits are taken) in every connection ID, for a QUIC-LB balancer (docs/DEPLOY.md)", func(v string) error {
		n, err := quiclb.ParseServerID(v)
		if err == nil {
			so.ConnectionIDs, err = quiclb.ForServer(n)
		}
		return err
	})
	fs.IntVar(&so.QueueSize, "queue", so.QueueSize, "requests that may wait for a worker; more are answered overloaded")
	fs.IntVar(&so.Workers, "workers", 0, "requests decoded and run at once (0: one per CPU)")
	fs.IntVar(&so.MaxConns, "max-conns", so.MaxConns, "QUIC connections held at once; more are refused in the handshake")
	fs.IntVar(&so.MaxConnsPerAddr, "max-conns-per-addr", so.MaxConnsPerAddr, "connections from one IP address")
	fs.Int64Var(&so.MaxStreams, "max-streams", so.MaxStreams, "requests one connection may have open at once (QUIC stream limit)")
	fs.Int64Var(&so.MaxHandlers, "max-handlers", so.MaxHandlers, "streams served at once over all connections; more are reset (code 3)")
	fs.Int64Var(&so.MaxInflightBytes, "max-inflight-bytes", so.MaxInflightBytes, "payload bytes held by all requests in flight; more are answered overloaded")
	fs.Func("max-payload", fmt.Sprintf("cap on a request's payload in bytes (default %d); each bundle and codec has a lower limit from its shape", so.MaxPayload), func(v string) error {
		_, err := fmt.Sscan(v, &so.MaxPayload)
		so.MaxPayload = min(so.MaxPayload, wire.MaxPayload)
		return err
	})
	fs.DurationVar(&so.HeaderTimeout, "header-timeout", so.HeaderTimeout, "time a stream has to deliver its 64-byte header")
	fs.DurationVar(&so.ReadTimeout, "read-timeout", so.ReadTimeout, "time a stream has to deliver its whole request (and to take its reply)")
	fs.DurationVar(&so.IdleTimeout, "idle-timeout", so.IdleTimeout, "a connection silent this long is closed")
	fs.Func("ticket-keys", "file of TLS session-ticket keys (64 hex digits a line, first encrypts) shared by restarts and replicas, so 0-RTT survives them (default: keys of this process)", func(path string) (err error) {
		so.TicketKeys, err = cloud.LoadTicketKeys(path)
		return err
	})
	return &so
}
