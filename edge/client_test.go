package edge

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
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
