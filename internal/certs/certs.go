// Package certs makes the TLS material splitstream needs: a development
// certificate authority with a server and a client certificate (written to
// files by `splitstream certs init`, or kept in memory for the demo and the
// tests), and the tls.Config of each side, with mutual TLS when the server
// is given a client CA. QUIC always runs TLS 1.3.
package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// ALPN is the application protocol both sides negotiate.
const ALPN = "splitstream/1"

// File names written by WriteDir.
const (
	CAFile         = "ca.pem"
	CAKeyFile      = "ca-key.pem"
	ServerFile     = "server.pem"
	ServerKeyFile  = "server-key.pem"
	ClientFile     = "client.pem"
	ClientKeyFile  = "client-key.pem"
	validityPeriod = 365 * 24 * time.Hour
)

// DefaultHosts are the names the development server certificate is valid for.
var DefaultHosts = []string{"localhost", "127.0.0.1", "::1"}

// Set is a development CA with one server and one client certificate, in PEM.
type Set struct {
	CA, CAKey         []byte
	Server, ServerKey []byte
	Client, ClientKey []byte
}

// New makes a fresh CA and issues a server certificate for hosts (DNS names
// or IP addresses) and a client certificate.
func New(hosts []string) (*Set, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "splitstream development CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(validityPeriod),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("certs: CA: %w", err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	s := &Set{CA: pemBlock("CERTIFICATE", caDER)}
	if s.CAKey, err = keyPEM(caKey); err != nil {
		return nil, err
	}
	if s.Server, s.ServerKey, err = issue(ca, caKey, "splitstream server", hosts, x509.ExtKeyUsageServerAuth); err != nil {
		return nil, err
	}
	if s.Client, s.ClientKey, err = issue(ca, caKey, "splitstream edge", nil, x509.ExtKeyUsageClientAuth); err != nil {
		return nil, err
	}
	return s, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return big.NewInt(time.Now().UnixNano())
	}
	return n
}

func issue(ca *x509.Certificate, caKey *ecdsa.PrivateKey, cn string, hosts []string, usage x509.ExtKeyUsage) ([]byte, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(validityPeriod),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: %s: %w", cn, err)
	}
	kp, err := keyPEM(key)
	return pemBlock("CERTIFICATE", der), kp, err
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func keyPEM(k *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pemBlock("PRIVATE KEY", der), nil
}

// WriteDir writes the set into dir (created if needed); keys are readable by
// the owner only. It refuses to overwrite an existing CA.
func (s *Set) WriteDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(dir, CAFile)); err == nil {
		return fmt.Errorf("certs: %s already holds a CA; remove it first", dir)
	}
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{CAFile, s.CA, 0o644}, {CAKeyFile, s.CAKey, 0o600},
		{ServerFile, s.Server, 0o644}, {ServerKeyFile, s.ServerKey, 0o600},
		{ClientFile, s.Client, 0o644}, {ClientKeyFile, s.ClientKey, 0o600},
	} {
		if err := os.WriteFile(filepath.Join(dir, f.name), f.data, f.mode); err != nil {
			return err
		}
	}
	return nil
}

func pool(caPEM []byte) (*x509.CertPool, error) {
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("certs: no certificate in the CA file")
	}
	return p, nil
}

// ServerConfig returns the server's TLS configuration from PEM data. With a
// client CA, clients must present a certificate it signed (mutual TLS).
func ServerConfig(certPEM, keyPEM, clientCAPEM []byte) (*tls.Config, error) {
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("certs: server key pair: %w", err)
	}
	c := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{ALPN}, MinVersion: tls.VersionTLS13}
	if clientCAPEM != nil {
		if c.ClientCAs, err = pool(clientCAPEM); err != nil {
			return nil, err
		}
		c.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return c, nil
}

// ClientConfig returns the edge's TLS configuration: it trusts caPEM (the
// system roots when nil), presents a client certificate when one is given,
// and caches sessions so reconnections can resume with 0-RTT.
func ClientConfig(caPEM, certPEM, keyPEM []byte, serverName string) (*tls.Config, error) {
	c := &tls.Config{NextProtos: []string{ALPN}, MinVersion: tls.VersionTLS13, ServerName: serverName,
		ClientSessionCache: tls.NewLRUClientSessionCache(16)}
	if caPEM != nil {
		p, err := pool(caPEM)
		if err != nil {
			return nil, err
		}
		c.RootCAs = p
	}
	if certPEM != nil {
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("certs: client key pair: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

// Configs returns a matching server and client configuration from the set,
// with mutual TLS when mutual is true.
func (s *Set) Configs(serverName string, mutual bool) (server, client *tls.Config, err error) {
	var clientCA, cert, key []byte
	if mutual {
		clientCA, cert, key = s.CA, s.Client, s.ClientKey
	}
	if server, err = ServerConfig(s.Server, s.ServerKey, clientCA); err != nil {
		return nil, nil, err
	}
	client, err = ClientConfig(s.CA, cert, key, serverName)
	return server, client, err
}

// ReadFile reads a PEM file, or returns nil for an empty path.
func ReadFile(path string) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	return b, nil
}

// readFiles reads PEM files with ReadFile.
func readFiles(paths ...string) ([][]byte, error) {
	out := make([][]byte, len(paths))
	for i, p := range paths {
		var err error
		if out[i], err = ReadFile(p); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// LoadServerConfig is ServerConfig from files; clientCA may be empty.
func LoadServerConfig(cert, key, clientCA string) (*tls.Config, error) {
	if cert == "" || key == "" {
		return nil, errors.New("certs: the server needs a certificate and a key")
	}
	p, err := readFiles(cert, key, clientCA)
	if err != nil {
		return nil, err
	}
	return ServerConfig(p[0], p[1], p[2])
}

// LoadClientConfig is ClientConfig from files; each may be empty.
func LoadClientConfig(ca, cert, key, serverName string) (*tls.Config, error) {
	p, err := readFiles(ca, cert, key)
	if err != nil {
		return nil, err
	}
	return ClientConfig(p[0], p[1], p[2], serverName)
}
