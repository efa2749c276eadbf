package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/splitstream/splitstream/edge"
	"github.com/splitstream/splitstream/edge/learn"
	"github.com/splitstream/splitstream/internal/certs"
	"github.com/splitstream/splitstream/models"
	"github.com/splitstream/splitstream/pipeline"
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
	var inputs listFlag
	fs.Var(&inputs, "input", "image file, folder of images, or - for a stream of images on stdin (repeatable)")
	out := fs.String("out", "-", "JSON lines output file (- for stdout)")
	metricsAddr := fs.String("metrics", "", "TCP address for the edge's /metrics (empty: off)")
	verbose := fs.Bool("v", false, "log at debug level (each switch of the adaptive policy's operating point)")
	s, dir, eng, clientTLS := edgeSetupFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if len(inputs) == 0 {
		fs.Usage()
		return errUsage
	}
	s.Server = cmp.Or(s.Server, "localhost:4433")
	var err error
	if s.Policy.Adaptive {
		err = s.Policy.LoadBundles(*dir)
	} else {
		s.Bundle, err = loadBundle(*dir)
	}
	if err != nil {
		return err
	}
	if s.Client.TLS, err = clientTLS(); err != nil {
		return err
	}
	s.Encoder.Engine, s.Encoder.EngineOptions = eng.Kind, eng.Options
	s.Client.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: map[bool]slog.Level{false: slog.LevelInfo, true: slog.LevelDebug}[*verbose]}))
	r := edge.Report{Records: os.Stdout, Summary: os.Stderr, Progress: os.Stderr}
	if *metricsAddr != "" {
		if r.Metrics, err = edge.ServeMetrics(ctx, *metricsAddr); err != nil {
			return err
		}
	}
	if *out != "-" {
		file, err := os.Create(*out)
		if err != nil {
			return err
		}
		defer file.Close()
		r.Records, r.Summary = file, os.Stdout
	}
	agent, closeAgent, err := s.Open()
	if err != nil {
		return err
	}
	return errors.Join(agent.RunReport(ctx, inputs, os.Stdin, r), closeAgent())
}

// edgeSetupFlags are the flags of the agent's parts, with --bundle,
// --engine, --threads and the TLS flags.
func edgeSetupFlags(fs *flag.FlagSet) (*edge.Setup, *string, *pipeline.Engine, func() (*tls.Config, error)) {
	s := &edge.Setup{}
	fs.Func("server", "cloud server `addresses` (host:port; repeatable, or comma-separated; a name may resolve to several): the edge fails over between them (default localhost:4433)", func(v string) error {
		s.Server = strings.TrimPrefix(s.Server+","+v, ",")
		return nil
	})
	fs.Func("tasks", "comma-separated tasks: classify,detect,segment (default: all the bundle has)", func(v string) (err error) {
		s.Agent.Tasks, err = wire.ParseTasks(v)
		return err
	})
	fs.IntVar(&s.Agent.Concurrency, "concurrency", 4, "requests in flight")
	fs.DurationVar(&s.Agent.Deadline, "deadline", 0, "time the cloud has for each request (0: none)")
	fs.DurationVar(&s.Agent.Timeout, "timeout", 30*time.Second, "time the edge waits for each request, reconnecting and retries included")
	fs.IntVar(&s.Agent.MaxRetries, "max-retries", 0, "times one request is sent again after overloaded replies, waiting the cloud's retry-after hint (0: until --timeout)")
	codecFlag(fs, &s.Encoder.Codec)
	fs.IntVar(&s.Encoder.MaxPixels, "max-pixels", edge.DefaultMaxPixels, "largest input image (width x height), checked from its header before decoding")
	fs.IntVar(&s.Client.RetryBudget, "retry-budget", 4, "times one request is sent again on a fresh connection after its connection broke before a reply")
	fs.IntVar(&s.Client.BreakerThreshold, "breaker", 3, "failed connection attempts in a row that open the circuit breaker (requests then fail at once for 10 s)")
	fs.StringVar(&s.Local.Dir, "learn", "", "keep a local classifier in this folder, learned from the cloud's replies (docs/EDGE2TRAIN.md)")
	fs.Func("labels", "JSON file mapping images to class names the local classifier learns instead of the cloud's answer (a new name is a new class)", func(v string) (err error) {
		s.Local.Labels, err = learn.LoadUserLabels(v)
		return err
	})
	fs.BoolVar(&s.Local.Trunk, "learn-trunk", false, "the local classifier learns from the trunk's features, run on the edge, instead of the latent")
	fs.Func("fallback", "local: answer classification with the local classifier when the cloud cannot (needs --learn); none (default)", func(v string) error {
		if s.Agent.Fallback = v == "local"; v != "local" && v != "none" {
			return fmt.Errorf("%q: want local or none", v)
		}
		return nil
	})
	s.Policy.Flags(fs)
	return s, bundleFlag(fs), engineFlags(fs, models.Native), clientTLSFlags(fs)
}

// clientTLSFlags are --ca, --cert, --key and --server-name; the function
// they return builds the client's TLS configuration for a server address.
func clientTLSFlags(fs *flag.FlagSet) func() (*tls.Config, error) {
	ca := fs.String("ca", "", "CA that signed the server certificate (PEM; empty: system roots)")
	cert := fs.String("cert", "", "client certificate for mutual TLS (PEM)")
	key := fs.String("key", "", "client private key (PEM)")
	name := fs.String("server-name", "", "name to verify the server certificate against (default: the host of each --server address)")
	return func() (*tls.Config, error) { return certs.LoadClientConfig(*ca, *cert, *key, *name) }
}
