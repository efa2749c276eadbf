package link

import (
	"context"
	"net"
	"testing"
	"time"
)

func TestIdleSessionsClosed(t *testing.T) {
	dst, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	idle := func(o *options) { o.idleTimeout = 100 * time.Millisecond }
	r, err := NewRelay(context.Background(), "127.0.0.1:0", dst.LocalAddr().String(), Config{}, 1, idle)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	src, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	src.WriteTo([]byte("x"), r.Addr())
	dst.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := dst.Read(make([]byte, 8)); err != nil {
		t.Fatal(err)
	}
	if n := r.Stats().Sessions; n != 1 {
		t.Fatalf("%d sessions after one datagram", n)
	}
	deadline := time.Now().Add(2 * time.Second)
	for r.Stats().Sessions != 0 {
		if time.Now().After(deadline) {
			t.Fatal("idle session still open after 2 s with a 100 ms timeout")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The client comes back: a new session serves it.
	src.WriteTo([]byte("y"), r.Addr())
	if _, err := dst.Read(make([]byte, 8)); err != nil {
		t.Fatal(err)
	}
}
