package quiclb

import (
	"encoding/binary"
	"fmt"
)

// Decoder is what a QUIC-aware balancer runs on each datagram: it finds
// the destination connection ID and reads the server ID out of it under
// the configurations it knows. It holds no state and is safe for
// concurrent use.
type Decoder struct {
	configs [MaxConfigID + 1]*Config
}

// NewDecoder returns a decoder for the given configurations (at most one
// per config ID).
func NewDecoder(configs ...Config) (*Decoder, error) {
	d := &Decoder{}
	for _, c := range configs {
		if err := c.Validate(); err != nil {
			return nil, err
		}
		if d.configs[c.ID] != nil {
			return nil, fmt.Errorf("quiclb: two configurations with ID %d", c.ID)
		}
		d.configs[c.ID] = &c
	}
	return d, nil
}

// ServerID returns the server ID that the connection ID cid routes to,
// and its configuration's ID. The server ID aliases cid. It fails, with
// an error that wraps [ErrUnroutable], when the config rotation bits are
// the reserved 0b111 or name no configuration of the decoder, when cid is
// shorter than the configuration's IDs, or when the first octet's length
// does not match cid's (a server under this package always encodes it).
//
// cid must be the whole connection ID, as in a long header. For a short
// header, whose IDs carry no length, use [Decoder.Route].
func (d *Decoder) ServerID(cid []byte) (sid []byte, config uint8, err error) {
	c, err := d.config(cid)
	if err != nil {
		return nil, 0, err
	}
	if len(cid) != c.CIDLen() || int(cid[0]&0x1f) != len(cid)-1 {
		return nil, 0, fmt.Errorf("%w: %d bytes with length field %d, configuration %d makes %d", ErrUnroutable, len(cid), cid[0]&0x1f, c.ID, c.CIDLen())
	}
	return cid[1 : 1+c.ServerIDLen], c.ID, nil
}

// config returns the configuration the first octet of cid names.
func (d *Decoder) config(cid []byte) (*Config, error) {
	if len(cid) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrUnroutable)
	}
	id := cid[0] >> 5
	if id == Unroutable {
		return nil, fmt.Errorf("%w: config rotation %#b (server without a configuration)", ErrUnroutable, id)
	}
	c := d.configs[id]
	if c == nil {
		return nil, fmt.Errorf("%w: no configuration %d", ErrUnroutable, id)
	}
	return c, nil
}

// Route reads the destination connection ID of a QUIC packet (using only
// the version-independent header of RFC 8999, so it serves any QUIC
// version) and returns the server ID it routes to, aliasing packet.
//
// Long headers (first bit 1: Initial, 0-RTT, Handshake, Retry, version
// negotiation) carry the ID's length, and the whole ID must decode as
// [Decoder.ServerID] says. A client's first Initial carries an ID the
// client chose at random, which is usually unroutable: the balancer sends
// it by its fallback (the 4-tuple), and the server's reply gives the
// client a routable ID for every later packet. Short headers (first bit 0)
// carry no length: the ID starts at the second byte and its length is the
// configuration's, named by its first octet.
func (d *Decoder) Route(packet []byte) ([]byte, error) {
	if len(packet) == 0 {
		return nil, fmt.Errorf("%w: empty packet", ErrUnroutable)
	}
	if packet[0]&0x80 != 0 {
		// Long header: first byte, version (4), DCID length (1), DCID.
		if len(packet) < 6 {
			return nil, fmt.Errorf("%w: long header of %d bytes", ErrUnroutable, len(packet))
		}
		if binary.BigEndian.Uint32(packet[1:5]) == 0 {
			return nil, fmt.Errorf("%w: version negotiation packet", ErrUnroutable)
		}
		n := int(packet[5])
		if len(packet) < 6+n {
			return nil, fmt.Errorf("%w: connection ID of %d bytes in a packet of %d", ErrUnroutable, n, len(packet))
		}
		sid, _, err := d.ServerID(packet[6 : 6+n])
		return sid, err
	}
	cid := packet[1:]
	c, err := d.config(cid)
	if err != nil {
		return nil, err
	}
	if len(cid) < c.CIDLen() {
		return nil, fmt.Errorf("%w: short header of %d bytes, configuration %d makes %d-byte IDs", ErrUnroutable, len(packet), c.ID, c.CIDLen())
	}
	sid, _, err := d.ServerID(cid[:c.CIDLen()])
	return sid, err
}
