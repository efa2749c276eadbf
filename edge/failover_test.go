package edge

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/splitstream/splitstream/internal/certs"
	"github.com/splitstream/splitstream/wire"
)

// TestReconnectMovesOnFromANewSocket checks the failover mechanics on bare
// QUIC listeners: when a server closes the connection with GoingAway the
// client connects to the next address, from a new UDP socket (a new source
// port), and after the last address it comes back to the first; the TLS
// server name defaults to each address's host.
func TestReconnectMovesOnFromANewSocket(t *testing.T) {
	set, err := certs.New([]string{"127.0.0.1", "127.0.0.2"})
	if err != nil {
		t.Fatal(err)
	}
	srvTLS, cliTLS, err := set.Configs("", true)
	if err != nil {
		t.Fatal(err)
	}
	cliTLS.ServerName = ""
	var addrs []string
	accepted := make(chan net.Addr, 8)
	for _, ip := range []string{"127.0.0.1", "127.0.0.2"} {
		ln, err := quic.ListenAddrEarly(ip+":0", srvTLS, nil)
		if err != nil {
			t.Skipf("cannot listen on %s: %v", ip, err)
		}
		t.Cleanup(func() { ln.Close() })
		addrs = append(addrs, ln.Addr().String())
		go func() {
			for {
				conn, err := ln.Accept(context.Background())
				if err != nil {
					return
				}
				accepted <- conn.LocalAddr()
				<-conn.HandshakeComplete()
				conn.CloseWithError(wire.GoingAway, "server going away")
			}
		}()
	}
	c, err := NewClient(addrs[0]+","+addrs[1], ClientOptions{TLS: cliTLS, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ports := map[int]bool{}
	for i, want := range []string{addrs[0], addrs[1], addrs[0]} {
		conn, err := c.connection(ctx)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		if got := (<-accepted).String(); got != want {
			t.Errorf("connection %d went to %s, want %s", i, got, want)
		}
		port := conn.LocalAddr().(*net.UDPAddr).Port
		if ports[port] {
			t.Errorf("connection %d reuses source port %d", i, port)
		}
		ports[port] = true
		select {
		case <-conn.Context().Done():
		case <-ctx.Done():
			t.Fatal("the server did not close the connection")
		}
	}
	for c.Stats().GoingAway < 3 && ctx.Err() == nil {
		time.Sleep(time.Millisecond) // watch counts after the close
	}
	if st := c.Stats(); st.GoingAway != 3 || st.Connects != 3 {
		t.Errorf("stats %+v, want 3 connections, all closed going away", st)
	}
}
