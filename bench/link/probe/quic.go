// Package probe measures what a link delivers: QUIC goodput on one stream,
// round-trip times and loss of small UDP datagrams, and when each datagram
// of a paced flood arrives (for capacity over time). It checks the link
// emulator and lets a bench print the figures of the link it runs on.
//
// Every function takes the sockets to use, so the two ends may live in
// different network namespaces (see package netns).
package probe

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"time"

	"github.com/quic-go/quic-go"
)

// QUICPacketSize is the UDP payload size of the full QUIC packets the probe
// sends: quic-go's initial packet size, kept fixed by turning path MTU
// discovery off so that the overhead per packet is known.
const QUICPacketSize = 1280

// QUICOverhead is the estimated bytes of each full QUIC 1-RTT packet that
// are not stream data, for one stream on a connection set up by the probe:
// 1 flag byte, a 4-byte connection ID (quic-go's default), a 2-byte packet
// number (quic-go's usual encoding while fewer than about 16k packets are in
// flight), the 16-byte AEAD tag, and the STREAM frame header (type, stream
// ID, and a 4-byte offset; the last frame in a packet omits its length).
const QUICOverhead = 1 + 4 + 2 + 16 + 1 + 1 + 4

// PayloadFraction is the share of stream data in a full QUIC packet as a
// rate limit sees it, with header bytes of IP and UDP header per datagram
// (link.HeaderIPv4 is 28): a saturated link of rate R delivers a goodput of
// about R times this.
func PayloadFraction(header int) float64 {
	return float64(QUICPacketSize-QUICOverhead) / float64(QUICPacketSize+header)
}

// Direction says which end of a QUIC transfer sends the data.
type Direction int

const (
	// Upload sends from the client (the edge) to the server.
	Upload Direction = iota
	// Download sends from the server to the client.
	Download
)

// Goodput is the result of a QUIC transfer.
type Goodput struct {
	Bytes   int64         // stream bytes transferred
	Elapsed time.Duration // from the start of the transfer to the last byte received
	// The rate is measured at the receiver over a steady window: from the
	// moment it has received SkipFraction of the bytes to the last byte,
	// which leaves out the handshake and slow start.
	WindowBytes int64
	Window      time.Duration
}

// SkipFraction is the share of a transfer, from its start, left out of the
// goodput window.
const SkipFraction = 0.1

// Bps is the goodput over the steady window, in bits per second.
func (g Goodput) Bps() float64 {
	if g.Window <= 0 {
		return 0
	}
	return float64(g.WindowBytes) * 8 / g.Window.Seconds()
}

// QUICGoodput runs a QUIC server on serverConn and a client on clientConn
// that dials dial (the server itself, or a relay in front of it), opens one
// stream and sends size bytes the way dir says. Both sockets stay open.
func QUICGoodput(ctx context.Context, clientConn, serverConn net.PacketConn, dial net.Addr, size int64, dir Direction) (Goodput, error) {
	if size <= 0 {
		return Goodput{}, fmt.Errorf("quic goodput: size %d: must be positive", size)
	}
	tlsServer, tlsClient, err := selfSignedTLS()
	if err != nil {
		return Goodput{}, fmt.Errorf("quic goodput: %w", err)
	}
	qconf := &quic.Config{
		DisablePathMTUDiscovery:    true,
		InitialPacketSize:          QUICPacketSize,
		MaxIdleTimeout:             10 * time.Second,
		MaxStreamReceiveWindow:     32 << 20,
		MaxConnectionReceiveWindow: 48 << 20,
	}
	st := &quic.Transport{Conn: serverConn}
	defer st.Close()
	ln, err := st.Listen(tlsServer, qconf)
	if err != nil {
		return Goodput{}, fmt.Errorf("quic goodput: listen: %w", err)
	}
	defer ln.Close()
	ct := &quic.Transport{Conn: clientConn}
	defer ct.Close()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		g   Goodput
		err error
	}
	serverDone := make(chan result, 1)
	start := time.Now()
	go func() {
		conn, err := ln.Accept(ctx)
		if err != nil {
			serverDone <- result{err: fmt.Errorf("accept: %w", err)}
			return
		}
		defer conn.CloseWithError(0, "")
		str, err := conn.AcceptStream(ctx)
		if err != nil {
			serverDone <- result{err: fmt.Errorf("accept stream: %w", err)}
			return
		}
		if dir == Upload {
			g, err := receive(str, size, start)
			serverDone <- result{g, err}
			return
		}
		// The client opens the stream with one byte; the server answers
		// with the data.
		if _, err := io.ReadFull(str, make([]byte, 1)); err != nil {
			serverDone <- result{err: fmt.Errorf("read hello: %w", err)}
			return
		}
		err = send(str, size)
		if err == nil {
			// Keep the connection until the client has read everything.
			_, err = io.Copy(io.Discard, str)
		}
		serverDone <- result{err: err}
	}()

	conn, err := ct.Dial(ctx, dial, tlsClient, qconf)
	if err != nil {
		return Goodput{}, fmt.Errorf("quic goodput: dial %s: %w", dial, err)
	}
	defer conn.CloseWithError(0, "")
	str, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return Goodput{}, fmt.Errorf("quic goodput: open stream: %w", err)
	}
	var g Goodput
	if dir == Upload {
		if err := send(str, size); err != nil {
			return Goodput{}, fmt.Errorf("quic goodput: send: %w", err)
		}
		r := <-serverDone
		if r.err != nil {
			return Goodput{}, fmt.Errorf("quic goodput: server: %w", r.err)
		}
		g = r.g
	} else {
		if _, err := str.Write([]byte{1}); err != nil {
			return Goodput{}, fmt.Errorf("quic goodput: send hello: %w", err)
		}
		g, err = receive(str, size, start)
		if err != nil {
			return Goodput{}, fmt.Errorf("quic goodput: receive: %w", err)
		}
		str.Close()
		if r := <-serverDone; r.err != nil {
			return Goodput{}, fmt.Errorf("quic goodput: server: %w", r.err)
		}
	}
	return g, nil
}

// send writes size bytes and closes the stream's send side.
func send(str *quic.Stream, size int64) error {
	buf := make([]byte, 64<<10)
	for left := size; left > 0; {
		n := int64(len(buf))
		if left < n {
			n = left
		}
		if _, err := str.Write(buf[:n]); err != nil {
			return err
		}
		left -= n
	}
	return str.Close()
}

// receive reads size bytes and times them.
func receive(str *quic.Stream, size int64, start time.Time) (Goodput, error) {
	buf := make([]byte, 64<<10)
	skip := int64(float64(size) * SkipFraction)
	var got, markBytes int64
	var mark time.Time
	for got < size {
		n, err := str.Read(buf)
		got += int64(n)
		if mark.IsZero() && got >= skip && got < size {
			mark, markBytes = time.Now(), got
		}
		if err != nil {
			if errors.Is(err, io.EOF) && got >= size {
				break
			}
			return Goodput{}, fmt.Errorf("after %d of %d bytes: %w", got, size, err)
		}
	}
	end := time.Now()
	if got != size {
		return Goodput{}, fmt.Errorf("received %d bytes, want %d", got, size)
	}
	if mark.IsZero() {
		mark, markBytes = start, 0
	}
	return Goodput{Bytes: got, Elapsed: end.Sub(start), WindowBytes: got - markBytes, Window: end.Sub(mark)}, nil
}

// selfSignedTLS returns a server config with a fresh self-signed
// certificate and a client config that trusts only it.
func selfSignedTLS() (server, client *tls.Config, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "probe"},
		DNSNames:     []string{"probe"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("create certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("parse certificate: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	const alpn = "splitstream-probe"
	server = &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		NextProtos:   []string{alpn},
	}
	client = &tls.Config{RootCAs: pool, ServerName: "probe", NextProtos: []string{alpn}}
	return server, client, nil
}
