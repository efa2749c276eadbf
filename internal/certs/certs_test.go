package certs

import (
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// handshake runs a TLS 1.3 handshake over loopback TCP and returns the
// first error either side saw.
func handshake(t *testing.T, server, client *tls.Config) error {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		s := tls.Server(c, server)
		if err := s.Handshake(); err != nil {
			done <- err
			return
		}
		_, err = s.Write([]byte{1})
		done <- err
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(5 * time.Second))
	c := tls.Client(raw, client)
	cerr := c.Handshake()
	if cerr == nil {
		// TLS 1.3 client-auth failures surface on the first read.
		_, cerr = c.Read(make([]byte, 1))
	}
	c.Close()
	serr := <-done
	if cerr != nil {
		return cerr
	}
	return serr
}

func TestMutualTLS(t *testing.T) {
	s, err := New(DefaultHosts)
	if err != nil {
		t.Fatal(err)
	}
	srv, cli, err := s.Configs("localhost", true)
	if err != nil {
		t.Fatal(err)
	}
	if err := handshake(t, srv, cli); err != nil {
		t.Fatalf("mutual TLS handshake: %v", err)
	}
	// A client without a certificate is refused when the server wants one.
	anon, err := ClientConfig(s.CA, nil, nil, "localhost")
	if err != nil {
		t.Fatal(err)
	}
	if err := handshake(t, srv, anon); err == nil {
		t.Fatal("server accepted a client without a certificate")
	}
	// A client that trusts another CA refuses the server.
	other, _ := New(DefaultHosts)
	stranger, _ := ClientConfig(other.CA, nil, nil, "localhost")
	srv1, _, _ := s.Configs("localhost", false)
	if err := handshake(t, srv1, stranger); err == nil {
		t.Fatal("client accepted a server signed by an unknown CA")
	}
}

func TestWriteDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	s, err := New([]string{"edge.example", "10.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, ServerKeyFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("server key: %v, mode %v", err, st.Mode())
	}
	if err := s.WriteDir(dir); err == nil {
		t.Fatal("overwrote an existing CA")
	}
	read := func(n string) []byte {
		b, err := ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	srv, err := ServerConfig(read(ServerFile), read(ServerKeyFile), read(CAFile))
	if err != nil {
		t.Fatal(err)
	}
	cli, err := ClientConfig(read(CAFile), read(ClientFile), read(ClientKeyFile), "edge.example")
	if err != nil {
		t.Fatal(err)
	}
	if err := handshake(t, srv, cli); err != nil {
		t.Fatalf("handshake with written files: %v", err)
	}
}
