package quiclb

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/splitstream/splitstream/internal/certs"
)

// tap is the server's socket with a balancer's eye: it decodes every
// datagram it receives, as a QUIC-LB balancer in front of it would.
type tap struct {
	net.PacketConn
	d *Decoder

	mu      sync.Mutex
	short   int                 // short header packets
	bad     []string            // short header packets that did not route to want
	want    []byte              // the server ID
	cids    map[string]struct{} // distinct DCIDs of short header packets
	senders map[string]struct{} // client addresses of short header packets
}

func (t *tap) ReadFrom(p []byte) (int, net.Addr, error) {
	n, addr, err := t.PacketConn.ReadFrom(p)
	if err != nil || n == 0 || p[0]&0x80 != 0 {
		return n, addr, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.short++
	sid, rerr := t.d.Route(p[:n])
	if rerr != nil || !bytes.Equal(sid, t.want) {
		t.bad = append(t.bad, fmt.Sprintf("%s: server ID %x (%v)", addr, sid, rerr))
		return n, addr, err
	}
	t.cids[string(p[1:1+DefaultConfig.CIDLen()])] = struct{}{}
	t.senders[addr.String()] = struct{}{}
	return n, addr, err
}

// TestQUICMigration runs quic-go with the generator on loopback, migrates
// the client to a second socket (a new address, as after a NAT rebinding
// or a network change), and checks that every short header packet the
// server received, before and after, carried a connection ID that routes
// to the server's ID, and that the client did change connection ID (so the
// routing rests on the server ID, not on one remembered ID).
func TestQUICMigration(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	set, err := certs.New([]string{"localhost", "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	serverTLS, clientTLS, err := set.Configs("localhost", false)
	if err != nil {
		t.Fatal(err)
	}
	gen, err := ForServer(0xbeef)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := NewDecoder(DefaultConfig)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tp := &tap{PacketConn: pc, d: d, want: gen.ServerID(), cids: map[string]struct{}{}, senders: map[string]struct{}{}}
	str := &quic.Transport{Conn: tp, ConnectionIDGenerator: gen}
	defer str.Close()
	ln, err := str.Listen(serverTLS, &quic.Config{})
	if err != nil {
		t.Fatal(err)
	}
	go echo(ctx, ln)

	udp1, _ := net.ListenPacket("udp", "127.0.0.1:0")
	ctr1 := &quic.Transport{Conn: udp1}
	defer ctr1.Close()
	conn, err := ctr1.Dial(ctx, pc.LocalAddr(), clientTLS, &quic.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseWithError(0, "")
	roundTrip(t, ctx, conn, "before migration")

	udp2, _ := net.ListenPacket("udp", "127.0.0.1:0")
	ctr2 := &quic.Transport{Conn: udp2}
	defer ctr2.Close()
	path, err := conn.AddPath(ctr2)
	if err != nil {
		t.Fatal(err)
	}
	if err := path.Probe(ctx); err != nil {
		t.Fatalf("probe: %v", err)
	}
	if err := path.Switch(); err != nil {
		t.Fatalf("switch: %v", err)
	}
	roundTrip(t, ctx, conn, "after migration")

	tp.mu.Lock()
	defer tp.mu.Unlock()
	if len(tp.bad) > 0 {
		t.Fatalf("%d of %d short header packets did not route to %x: %v", len(tp.bad), tp.short, tp.want, tp.bad)
	}
	if _, ok := tp.senders[udp2.LocalAddr().String()]; !ok || len(tp.senders) < 2 {
		t.Fatalf("routed packets came from %v; want both %s and %s", tp.senders, udp1.LocalAddr(), udp2.LocalAddr())
	}
	if len(tp.cids) < 2 {
		t.Fatalf("the client used %d connection ID; a migration takes a new one", len(tp.cids))
	}
	t.Logf("%d short header packets from %d addresses with %d connection IDs, all routed to server %x", tp.short, len(tp.senders), len(tp.cids), tp.want)
}

func echo(ctx context.Context, ln *quic.Listener) {
	for {
		conn, err := ln.Accept(ctx)
		if err != nil {
			return
		}
		go func() {
			for {
				s, err := conn.AcceptStream(ctx)
				if err != nil {
					return
				}
				go func() {
					defer s.Close()
					io.Copy(s, s)
				}()
			}
		}()
	}
}

func roundTrip(t *testing.T, ctx context.Context, conn *quic.Conn, what string) {
	t.Helper()
	s, err := conn.OpenStreamSync(ctx)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	msg := []byte(what)
	if _, err := s.Write(msg); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	s.Close()
	got, err := io.ReadAll(s)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("%s: echo %q err %v", what, got, err)
	}
}
