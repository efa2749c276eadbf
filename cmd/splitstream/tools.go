package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/splitstream/splitstream/entropy/vectors"
	"github.com/splitstream/splitstream/internal/certs"
)

func init() {
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
	failed, bad := 0, 0
	for _, name := range fs.Args() {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := vectors.CheckFile(name, w)
		if err != nil {
			fmt.Fprintf(w, "%s: FAIL: %v\n", name, err)
			bad++
			continue
		}
		failed += n
	}
	if bad > 0 || failed > 0 {
		return fmt.Errorf("%d file(s) could not be read, %d check(s) failed", bad, failed)
	}
	return nil
}

func runVersion(ctx context.Context, args []string) error {
	fs := newFlagSet("version", "", "Print the version and build of this binary.")
	if err := fs.Parse(args); err != nil {
		return err
	}
	v := "devel"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		v = bi.Main.Version
	}
	fmt.Printf("splitstream %s %s/%s %s\n", v, runtime.GOOS, runtime.GOARCH, runtime.Version())
	return nil
}
