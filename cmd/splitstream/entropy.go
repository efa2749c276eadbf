package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/splitstream/splitstream/entropy/vectors"
)

func init() {
	register(command{name: "entropy", summary: "entropy-coder tools (check-vectors)", run: runEntropy})
}

const entropySummary = `Entropy-coder tools.

Subcommands:
  check-vectors FILE...  check the rANS coder against CompressAI test vectors:
                         every pmf_to_cdf entry, the encoded bytes and the
                         decoded symbols of every case; exits non-zero on any
                         mismatch`

func runEntropy(ctx context.Context, args []string) error {
	fs := newFlagSet("entropy", "SUBCOMMAND [ARGS]", entropySummary)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return errUsage
	}
	switch sub := fs.Arg(0); sub {
	case "check-vectors":
		return runCheckVectors(ctx, fs.Args()[1:], os.Stdout)
	default:
		fmt.Fprintf(fs.Output(), "splitstream entropy: unknown subcommand %q\n\n", sub)
		fs.Usage()
		return errUsage
	}
}

func runCheckVectors(ctx context.Context, args []string, w io.Writer) error {
	fs := newFlagSet("entropy check-vectors", "FILE...",
		"Check the rANS coder against CompressAI test-vector files (JSON: pmf_to_cdf, cdfs,\ncdf_lengths, offsets, cases). Prints one line per case and a summary of the\nCDF checks; exits 0 only if everything matches.")
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
		n, err := checkVectorFile(name, w)
		if err != nil {
			fmt.Fprintf(w, "%s: FAIL: %v\n", name, err)
			bad++
			continue
		}
		failed += n
	}
	switch {
	case bad > 0 && failed > 0:
		return fmt.Errorf("%d file(s) could not be read and %d check(s) failed", bad, failed)
	case bad > 0:
		return fmt.Errorf("%d file(s) could not be read", bad)
	case failed > 0:
		return fmt.Errorf("%d check(s) failed", failed)
	}
	return nil
}

// checkVectorFile checks one file and returns how many checks failed.
func checkVectorFile(name string, w io.Writer) (int, error) {
	data, err := os.ReadFile(name)
	if err != nil {
		return 0, err
	}
	f, err := vectors.Parse(data)
	if err != nil {
		return 0, err
	}
	if len(f.PMFToCDF) == 0 && len(f.Cases) == 0 {
		return 0, errors.New("no pmf_to_cdf entries and no cases")
	}
	failed := 0
	cdfs := f.CheckCDFs()
	for _, r := range cdfs {
		if !r.OK {
			fmt.Fprintf(w, "%s: %s: FAIL: %s\n", name, r.Name, r.Detail)
			failed++
		}
	}
	fmt.Fprintf(w, "%s: pmf_to_cdf: %d of %d match\n", name, len(cdfs)-failed, len(cdfs))
	for _, r := range f.CheckCases() {
		status := "ok"
		if !r.OK {
			status = "FAIL"
			failed++
		}
		fmt.Fprintf(w, "%s: case %s: %s: %s\n", name, r.Name, status, r.Detail)
	}
	return failed, nil
}
