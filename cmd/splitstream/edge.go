package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/splitstream/splitstream/edge"
	"github.com/splitstream/splitstream/internal/certs"
	"github.com/splitstream/splitstream/models"
	"github.com/splitstream/splitstream/wire"
)

func init() {
	register(command{name: "edge", summary: "encode images and stream them to a cloud server over QUIC", run: runEdge})
}

func runEdge(ctx context.Context, args []string) error {
	fs := newFlagSet("edge", "--server ADDR [--bundle DIR] --input PATH|DIR|- [flags]",
		"Read PNG and JPEG images (files, folders, or a stream of files on stdin with --input -),\n"+
			"preprocess them as the bundle's manifest says, run the encoder, entropy-code the latent\n"+
			"and send each on its own stream of one QUIC connection, several in flight. Writes one\n"+
			"JSON line per image (results, bytes sent, latency breakdown) and a summary table.")
	var servers listFlag
	fs.Var(&servers, "server", "cloud server `addresses` (host:port; repeatable, or comma-separated; a name may resolve to several): the edge fails over between them (default localhost:4433)")
	var inputs listFlag
	fs.Var(&inputs, "input", "image file, folder of images, or - for a stream of images on stdin (repeatable)")
	out := fs.String("out", "-", "JSON lines output file (- for stdout)")
	var ao edge.AgentOptions
	fs.Func("tasks", "comma-separated tasks: classify,detect,segment (default: all the bundle has)", func(v string) (err error) {
		ao.Tasks, err = wire.ParseTasks(v)
		return err
	})
	fs.IntVar(&ao.Concurrency, "concurrency", 4, "requests in flight")
	fs.DurationVar(&ao.Deadline, "deadline", 0, "time the cloud has for each request (0: none)")
	fs.DurationVar(&ao.Timeout, "timeout", 30*time.Second, "time the edge waits for each request, reconnecting and retries included")
	fs.IntVar(&ao.MaxRetries, "max-retries", 20, "times one request is sent again after overloaded replies (waiting the cloud's retry-after hint)")
	var eo edge.EncoderOptions
	codecFlag(fs, &eo.Codec)
	fs.IntVar(&eo.MaxPixels, "max-pixels", edge.DefaultMaxPixels, "largest input image (width x height), checked from its header before decoding")
	var co edge.ClientOptions
	fs.IntVar(&co.RetryBudget, "retry-budget", 4, "times one request is sent again on a fresh connection after its connection broke before a reply")
	fs.IntVar(&co.BreakerThreshold, "breaker", 3, "failed connection attempts in a row that open the circuit breaker (requests then fail at once for 10 s)")
	metricsAddr := fs.String("metrics", "", "TCP address for the edge's /metrics (empty: off)")
	clientTLS := clientTLSFlags(fs)
	dir, eng := bundleFlag(fs), engineFlags(fs, models.Native)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if len(inputs) == 0 {
		fs.Usage()
		return errUsage
	}
	b, err := loadBundle(*dir)
	if err != nil {
		return err
	}
	server := cmp.Or(servers.String(), "localhost:4433")
	if co.TLS, err = clientTLS(server); err != nil {
		return err
	}
	eo.Engine, eo.EngineOptions = eng.Kind, eng.Options
	enc, err := edge.NewEncoder(b, eo)
	if err != nil {
		return err
	}
	defer enc.Close()
	co.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	client, err := edge.NewClient(server, co)
	if err != nil {
		return err
	}
	defer client.Close()
	agent, err := edge.NewAgent(enc, client, ao)
	if err != nil {
		return err
	}
	return stream(ctx, agent, client, inputs, *out, *metricsAddr)
}

// clientTLSFlags are --ca, --cert, --key and --server-name; the function
// they return builds the client's TLS configuration for a server address.
func clientTLSFlags(fs *flag.FlagSet) func(server string) (*tls.Config, error) {
	ca := fs.String("ca", "", "CA that signed the server certificate (PEM; empty: system roots)")
	cert := fs.String("cert", "", "client certificate for mutual TLS (PEM)")
	key := fs.String("key", "", "client private key (PEM)")
	name := fs.String("server-name", "", "name to verify the server certificate against (default: the host of each --server address)")
	return func(server string) (*tls.Config, error) {
		if *name == "" {
			*name, _, _ = net.SplitHostPort(server)
		}
		return certs.LoadClientConfig(*ca, *cert, *key, *name)
	}
}

// stream sends the inputs through the agent, writes a JSON line per image
// to out and the summary, and fails when any image failed.
func stream(ctx context.Context, agent *edge.Agent, client *edge.Client, inputs []string, out, metricsAddr string) error {
	var metrics *edge.Metrics
	if metricsAddr != "" {
		var err error
		if metrics, err = edge.ServeMetrics(ctx, metricsAddr); err != nil {
			return err
		}
	}
	lines, summaryOut := io.Writer(os.Stdout), io.Writer(os.Stderr)
	if out != "-" {
		file, err := os.Create(out)
		if err != nil {
			return err
		}
		defer file.Close()
		lines, summaryOut = file, os.Stdout
	}
	start, rec := time.Now(), edge.NewRecorder(lines, metrics, os.Stderr)
	readErr := agent.RunInputs(ctx, inputs, os.Stdin, rec.Record)
	sum, writeErr := rec.Close()
	sum.Write(summaryOut)
	st, as := client.Stats(), agent.Stats()
	fmt.Fprintf(summaryOut, "connections %d (0-RTT resumed %d), resent after a broken connection %d, overloaded replies %d, retries %d, %.1f s\n",
		st.Connects, st.Resumed0RTT, st.Resent, as.OverloadedReplies, as.Retries, time.Since(start).Seconds())
	if err := errors.Join(readErr, writeErr); err != nil {
		return err
	}
	if sum.Errors > 0 {
		return fmt.Errorf("%d of %d images failed", sum.Errors, sum.Count)
	}
	return nil
}
