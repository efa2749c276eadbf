package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/splitstream/splitstream/entropy/vectors"
)

func init() {
	register(command{name: "entropy check-vectors", summary: "check the rANS coder against CompressAI test vectors",
		run: func(ctx context.Context, args []string) error { return runCheckVectors(ctx, args, os.Stdout) }})
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
