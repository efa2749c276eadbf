// Package quiclb makes QUIC connection IDs that a load balancer can route
// by, in the plaintext (keyless) layout of the QUIC-LB draft
// (draft-ietf-quic-load-balancers-21, "QUIC-LB: Generating Routable QUIC
// Connection IDs", sections 3 and 5), and decodes them as a balancer does.
//
// Every connection ID a [Generator] makes is
//
//	QUIC-LB Connection ID {
//	  First Octet {
//	    Config Rotation (3),  // the configuration's ID, 0..6; 0b111 is reserved
//	    CID Len (5),          // the length of the rest of the ID (total - 1)
//	  },
//	  Server ID (8..120),     // this server's ID, opaque bytes, same length for the whole pool
//	  Nonce (32..144),        // random bytes
//	}
//
// A QUIC server chooses the connection IDs its peer sends to: quic-go asks
// the Transport's ConnectionIDGenerator for the ID it puts in its first
// Initial reply and for every NEW_CONNECTION_ID frame. So once the
// handshake has begun, every packet an edge sends carries this server's ID
// in the clear, on every path: a balancer that reads it ([Decoder]) keeps a
// connection on its replica when the edge's address or port changes (NAT
// rebinding, migration to another network), which hashing on the address
// cannot do.
//
// The layout has no key, so an observer can tell which connections share a
// server; the draft's encrypted variants hide that at the cost of AES in
// the balancer. Inside a cluster, where the balancer and the servers are
// the only readers that matter, the plaintext form is what balancers
// support and what this package does. The nonce is drawn from crypto/rand
// for every ID, as the draft requires of keyless configurations (no
// observable relation between the IDs of one connection).
package quiclb

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"

	"github.com/quic-go/quic-go"
)

// Limits of the draft's configuration (section 5.3).
const (
	// Unroutable is the reserved config rotation codepoint: a server with
	// no configuration marks its IDs with it, and a balancer falls back to
	// routing on the 4-tuple.
	Unroutable = 0b111
	// MaxConfigID is the largest config rotation codepoint a
	// configuration may use.
	MaxConfigID    = 6
	MinServerIDLen = 1
	MaxServerIDLen = 15
	MinNonceLen    = 4
	MaxNonceLen    = 18
	// MaxPlaintextLen bounds server ID plus nonce: QUIC v1 connection
	// IDs are at most 20 bytes, one of them the first octet.
	MaxPlaintextLen = 19
)

// ErrUnroutable is wrapped by every decoding failure: a balancer routes
// such packets with its fallback (the 4-tuple), as the draft says.
var ErrUnroutable = errors.New("quiclb: unroutable connection ID")

// Config is a QUIC-LB plaintext configuration: what the balancer and all
// the servers of a pool agree on. Each server also has its own server ID
// of ServerIDLen bytes.
type Config struct {
	// ID is the config rotation codepoint, 0..MaxConfigID: IDs made under
	// an old and a new configuration can coexist while a pool changes.
	ID uint8
	// ServerIDLen is the server ID's length in bytes (1..15): enough for
	// every replica the pool may ever have.
	ServerIDLen int
	// NonceLen is the random part's length in bytes (4..18). It makes the
	// IDs of one server distinct: with n live IDs, a collision has
	// probability about n²/2^(8·NonceLen+1).
	NonceLen int
}

// DefaultConfig is configuration 0 with 2-byte server IDs (65 536
// replicas) and 8-byte nonces: 11-byte connection IDs.
var DefaultConfig = Config{ID: 0, ServerIDLen: 2, NonceLen: 8}

// Validate checks the configuration against the draft's limits.
func (c Config) Validate() error {
	switch {
	case c.ID > MaxConfigID:
		return fmt.Errorf("quiclb: config ID %d: the most is %d (%#b is reserved for unroutable IDs)", c.ID, MaxConfigID, Unroutable)
	case c.ServerIDLen < MinServerIDLen || c.ServerIDLen > MaxServerIDLen:
		return fmt.Errorf("quiclb: server ID length %d: want %d..%d", c.ServerIDLen, MinServerIDLen, MaxServerIDLen)
	case c.NonceLen < MinNonceLen || c.NonceLen > MaxNonceLen:
		return fmt.Errorf("quiclb: nonce length %d: want %d..%d", c.NonceLen, MinNonceLen, MaxNonceLen)
	case c.ServerIDLen+c.NonceLen > MaxPlaintextLen:
		return fmt.Errorf("quiclb: server ID (%d) and nonce (%d) lengths sum to more than %d", c.ServerIDLen, c.NonceLen, MaxPlaintextLen)
	}
	return nil
}

// CIDLen is the length of the configuration's connection IDs.
func (c Config) CIDLen() int { return 1 + c.ServerIDLen + c.NonceLen }

// firstOctet is the config rotation bits and the self-encoded length.
func (c Config) firstOctet() byte { return c.ID<<5 | byte(c.CIDLen()-1) }

// ServerID encodes the number n as a server ID of the configuration's
// length, big-endian; it fails when n does not fit.
func (c Config) ServerID(n uint64) ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.ServerIDLen < 8 && n>>(8*c.ServerIDLen) != 0 {
		return nil, fmt.Errorf("quiclb: server ID %d does not fit in %d bytes", n, c.ServerIDLen)
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], n)
	sid := make([]byte, c.ServerIDLen)
	k := min(c.ServerIDLen, 8)
	copy(sid[c.ServerIDLen-k:], b[8-k:])
	return sid, nil
}

// ParseServerID reads a server number as `splitstream cloud --server-id`
// takes it: a decimal number, or an IPv4 address whose low 16 bits are
// the number. The address form lets a Kubernetes Deployment, whose pods
// have no ordinal, give each replica a distinct ID from its pod IP (unique
// within a pod network of /16 or smaller), and lets a balancer find the
// pod from the ID and the network's prefix without a table.
func ParseServerID(s string) (uint64, error) {
	if ip, err := netip.ParseAddr(s); err == nil {
		if !ip.Is4() {
			return 0, fmt.Errorf("quiclb: server ID %q: only IPv4 addresses map to a server ID", s)
		}
		b := ip.As4()
		return uint64(b[2])<<8 | uint64(b[3]), nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("quiclb: server ID %q: want a number or an IPv4 address", s)
	}
	return n, nil
}

// Generator is a quic.ConnectionIDGenerator that puts one server ID in
// every connection ID. It is safe for concurrent use.
type Generator struct {
	cfg   Config
	first byte
	sid   []byte
	rand  io.Reader
}

var _ quic.ConnectionIDGenerator = (*Generator)(nil)

// NewGenerator returns a generator for the server with ID serverID (of
// c.ServerIDLen bytes) under the configuration c.
func NewGenerator(c Config, serverID []byte) (*Generator, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if len(serverID) != c.ServerIDLen {
		return nil, fmt.Errorf("quiclb: server ID of %d bytes, the configuration says %d", len(serverID), c.ServerIDLen)
	}
	return &Generator{cfg: c, first: c.firstOctet(), sid: append([]byte(nil), serverID...), rand: rand.Reader}, nil
}

// ForServer returns a generator under [DefaultConfig] for the server
// numbered n (0..65535): what `splitstream cloud --server-id N` uses.
func ForServer(n uint64) (*Generator, error) {
	sid, err := DefaultConfig.ServerID(n)
	if err != nil {
		return nil, err
	}
	return NewGenerator(DefaultConfig, sid)
}

// GenerateConnectionID returns a new connection ID: first octet, server
// ID, fresh random nonce.
func (g *Generator) GenerateConnectionID() (quic.ConnectionID, error) {
	var b [1 + MaxPlaintextLen]byte
	n := g.cfg.CIDLen()
	b[0] = g.first
	copy(b[1:], g.sid)
	if _, err := io.ReadFull(g.rand, b[1+len(g.sid):n]); err != nil {
		return quic.ConnectionID{}, fmt.Errorf("quiclb: nonce: %w", err)
	}
	return quic.ConnectionIDFromBytes(b[:n]), nil
}

// ConnectionIDLen is the constant length of the generated IDs.
func (g *Generator) ConnectionIDLen() int { return g.cfg.CIDLen() }

// ServerID returns a copy of the generator's server ID.
func (g *Generator) ServerID() []byte { return append([]byte(nil), g.sid...) }
