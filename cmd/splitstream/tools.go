package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/splitstream/splitstream/bench/learneval"
	"github.com/splitstream/splitstream/bundle"
	"github.com/splitstream/splitstream/entropy/vectors"
	"github.com/splitstream/splitstream/internal/certs"
	"github.com/splitstream/splitstream/models"
	"github.com/splitstream/splitstream/parity"
)

func init() {
	register(command{name: "learn eval", summary: "top-1 of the edge's local classifier (edge --learn) on a test set, next to the cloud head's", run: runLearnEval})
	register(command{name: "parity", summary: "run a bundle's graphs on its reference vectors with each engine and print the differences from PyTorch", run: runParity})
	register(command{name: "certs init", summary: "write a development CA, server and client certificate", run: runCerts})
	register(command{name: "entropy check-vectors", summary: "check the rANS coder against CompressAI test vectors",
		run: func(ctx context.Context, args []string) error { return runCheckVectors(ctx, args, os.Stdout) }})
	register(command{name: "version", summary: "print the version and build of this binary", run: runVersion})
}

func runCerts(ctx context.Context, args []string) error {
	fs := newFlagSet("certs init", "[--hosts H1,H2] DIR",
		"Write a development certificate authority, a server certificate and a client\n"+
			"certificate (ECDSA P-256, valid one year) into DIR: ca.pem, ca-key.pem,\n"+
			"server.pem, server-key.pem, client.pem, client-key.pem. Use them with\n"+
			"`splitstream cloud --cert DIR/server.pem --key DIR/server-key.pem --client-ca DIR/ca.pem`\n"+
			"and `splitstream edge --ca DIR/ca.pem --cert DIR/client.pem --key DIR/client-key.pem`.")
	hosts := fs.String("hosts", strings.Join(certs.DefaultHosts, ","), "comma-separated DNS names and IP addresses of the server certificate")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errUsage
	}
	s, err := certs.New(strings.Split(*hosts, ","))
	if err == nil {
		err = s.WriteDir(fs.Arg(0))
	}
	if err != nil {
		return err
	}
	fmt.Printf("wrote a development CA, a server certificate for %s and a client certificate to %s\n", *hosts, fs.Arg(0))
	return nil
}

func runCheckVectors(ctx context.Context, args []string, w io.Writer) error {
	fs := newFlagSet("entropy check-vectors", "FILE...",
		"Check the rANS coder against CompressAI test-vector files (JSON: pmf_to_cdf, cdfs,\ncdf_lengths, offsets, cases): every pmf_to_cdf entry, the encoded bytes and the\ndecoded symbols of every case. Prints one line per case and a summary of the CDF\nchecks; exits 0 only if everything matches.")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errUsage
	}
	return vectors.CheckFiles(fs.Args(), w)
}

func runVersion(ctx context.Context, args []string) error {
	if err := newFlagSet("version", "", "Print the version and build of this binary.").Parse(args); err != nil {
		return err
	}
	v := "devel"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		v = bi.Main.Version
	}
	fmt.Printf("splitstream %s %s/%s %s\n", v, runtime.GOOS, runtime.GOARCH, runtime.Version())
	return nil
}

func runParity(ctx context.Context, args []string) error {
	fs := newFlagSet("parity", "[--bundle DIR] [--engines native,ort] [--testset DIR] [--json]",
		"Run every graph of a bundle on its reference inputs (reference/) with each engine and print\n"+
			"the largest difference of its outputs from PyTorch's; for a split bundle also code the\n"+
			"reference latents with the learned codec, and the reference images through the edge, and\n"+
			"count the strings equal to the reference strings. The exporter calls it as its parity gate.")
	dir := bundleFlag(fs)
	engines := fs.String("engines", models.Native+","+models.ORT, "comma-separated engines to run")
	testset := fs.String("testset", "", "test set folder of the reference images (default: the bundle's, if any)")
	threads := fs.Int("threads", 0, "threads per graph run (0: the engine's default)")
	asJSON := fs.Bool("json", false, "print the report as one JSON object")
	if err := fs.Parse(args); err != nil {
		return err
	}
	b, err := loadBundle(*dir)
	if err != nil {
		return err
	}
	rep, err := parity.Check(ctx, b, parity.Options{Engines: strings.Split(*engines, ","),
		EngineOptions: models.Options{Threads: *threads}, TestSet: *testset})
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(os.Stdout).Encode(rep)
	}
	rep.WriteText(os.Stdout)
	return nil
}

// runLearnEval scores the local model that `edge --learn DIR` trained.
func runLearnEval(ctx context.Context, args []string) error {
	fs := newFlagSet("learn eval", "--model DIR [--bundle DIR] [--testset DIR] [--trunk] [--json]",
		"Score the edge's local classifier (docs/EDGE2TRAIN.md), trained by `splitstream edge --learn DIR`,\n"+
			"on a test set, next to the cloud head's top-1 on the same latents.")
	dir, eng := bundleFlag(fs), engineFlags(fs, models.Native)
	model := fs.String("model", "", "folder of the local model (required)")
	testset := fs.String("testset", bundle.ZooDir+"/testset", "test set folder")
	trunk := fs.Bool("trunk", false, "the model learned from the trunk's features (edge --learn-trunk)")
	asJSON := fs.Bool("json", false, "print one JSON object: top1_local, top1_cloud, samples_trained, train_ms_per_1000, model_bytes")
	if err := fs.Parse(args); err != nil || *model == "" {
		fs.Usage()
		return errors.Join(err, errUsage)
	}
	b, err := loadBundle(*dir)
	if err != nil {
		return err
	}
	o := learneval.Options{Input: map[bool]learneval.Input{false: learneval.Latent, true: learneval.Trunk}[*trunk], Engine: eng.Kind, EngineOptions: eng.Options}
	r, err := learneval.Eval(ctx, b, *model, *testset, o)
	switch {
	case err != nil:
		return err
	case *asJSON:
		return json.NewEncoder(os.Stdout).Encode(r)
	}
	_, err = fmt.Printf("local top-1 %.4f, cloud head top-1 %.4f on %d images; %d samples learned, %.1f ms per 1000, model %d bytes\n", r.Top1Local, r.Top1Cloud, r.Images, r.SamplesTrained, r.TrainMSPer1000, r.ModelBytes)
	return err
}
