package edge

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"slices"
	"testing"

	"github.com/quic-go/quic-go"
)

func TestPermanentErrors(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("dial: %w", &net.DNSError{Err: "no such host", Name: "x.invalid", IsNotFound: true}), true},
		{&net.DNSError{Err: "timeout", IsTimeout: true}, false},
		{x509.UnknownAuthorityError{}, true},
		{x509.HostnameError{Host: "a"}, true},
		{&quic.TransportError{ErrorCode: quic.TransportErrorCode(0x100 + 42), Remote: true}, true}, // TLS alert bad_certificate
		{&quic.IdleTimeoutError{}, false},
		{errors.New("connection refused"), false},
	} {
		if got := permanent(c.err); got != c.want {
			t.Errorf("permanent(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

func TestParseServers(t *testing.T) {
	got, err := ParseServers(" localhost:4433, 127.0.0.2:5000,,[::1]:1 ")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"localhost:4433", "127.0.0.2:5000", "[::1]:1"}; !slices.Equal(got, want) {
		t.Errorf("ParseServers = %q, want %q", got, want)
	}
	for _, bad := range []string{"", " , ", "localhost", ":4433", "host:", "a:1,b"} {
		if s, err := ParseServers(bad); err == nil {
			t.Errorf("ParseServers(%q) = %q, want an error", bad, s)
		}
	}
}

func FuzzParseServers(f *testing.F) {
	for _, s := range []string{"localhost:4433", "a:1,b:2", "[::1]:1", ",", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		servers, err := ParseServers(s)
		if err == nil && len(servers) == 0 {
			t.Fatal("no servers and no error")
		}
	})
}

// TestResolveWalksEveryAddress checks that names resolve to each of their
// addresses, in order after the addresses given as IPs before them, and
// that a pass ends after the last.
func TestResolveWalksEveryAddress(t *testing.T) {
	c, err := NewClient("127.0.0.2:7,localhost:9", ClientOptions{TLS: &tls.Config{}})
	if err != nil {
		t.Fatal(err)
	}
	ips, err := net.DefaultResolver.LookupHost(context.Background(), "localhost")
	if err != nil {
		t.Skipf("localhost does not resolve here: %v", err)
	}
	want := []target{{"127.0.0.2", "127.0.0.2:7"}}
	for _, ip := range ips {
		want = append(want, target{"localhost", net.JoinHostPort(ip, "9")})
	}
	for i, w := range want {
		got, last, err := c.nextTarget(context.Background())
		if err != nil || got != w || last != (i == len(want)-1) {
			t.Errorf("target %d = %+v, last %v, err %v; want %+v, last %v", i, got, last, err, w, i == len(want)-1)
		}
	}
	if got, _, _ := c.nextTarget(context.Background()); got != want[0] {
		t.Errorf("second pass starts at %+v, want %+v", got, want[0])
	}
}
