package pipeline

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"sync"

	"github.com/splitstream/splitstream/cloud"
	"github.com/splitstream/splitstream/internal/certs"
)

// Serve serves models on pc with a new cloud server until stop is called
// (stop waits for the server to end and closes pc). A server error is
// logged to logger.
func Serve(ctx context.Context, models []*cloud.Model, pc net.PacketConn, srvTLS *tls.Config, o cloud.Options) (stop func(), err error) {
	srv, err := cloud.New(models, o)
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(sctx, pc, srvTLS); err != nil && o.Logger != nil {
			o.Logger.Warn("cloud", "err", err)
		}
		pc.Close()
	}()
	var once sync.Once
	return func() { once.Do(func() { cancel(); <-done }) }, nil
}

// Cloud is a cloud server on loopback with ephemeral certificates.
type Cloud struct {
	// Addr is the server's UDP address.
	Addr string
	// ClientTLS is a client configuration with a client certificate that the
	// server trusts (mutual TLS), for the server name "localhost".
	ClientTLS *tls.Config
	// ServerTLS is the server's configuration, for further servers that the
	// same clients should trust (e.g. in a network namespace).
	ServerTLS *tls.Config
	// Stop stops the server and waits for it.
	Stop func()
}

// Loopback starts a cloud server for models on 127.0.0.1 with mutual TLS
// from ephemeral in-memory certificates.
func Loopback(ctx context.Context, models []*cloud.Model, o cloud.Options) (*Cloud, error) {
	srvTLS, cliTLS, err := TLS()
	if err != nil {
		return nil, err
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	stop, err := Serve(ctx, models, pc, srvTLS, o)
	if err != nil {
		pc.Close()
		return nil, err
	}
	return &Cloud{Addr: pc.LocalAddr().String(), ClientTLS: cliTLS, ServerTLS: srvTLS, Stop: stop}, nil
}

// TLS returns server and client configurations for mutual TLS from
// ephemeral in-memory certificates for "localhost" and the loopback
// addresses.
func TLS() (server, client *tls.Config, err error) {
	set, err := certs.New(certs.DefaultHosts)
	if err != nil {
		return nil, nil, err
	}
	return set.Configs("localhost", true)
}

// quiet is a logger that discards everything.
var quiet = slog.New(slog.DiscardHandler)
