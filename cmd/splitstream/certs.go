package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/splitstream/splitstream/internal/certs"
)

func init() {
	register(command{name: "certs init", summary: "write a development CA, server and client certificate", run: runCerts})
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
