package quiclb

import (
	"bytes"
	"errors"
	"net/netip"
	"strconv"
	"testing"
)

// FuzzRoute feeds the balancer's decoder arbitrary datagrams: it never
// panics, every failure is ErrUnroutable, and a server ID it returns lies
// inside the packet, has the configuration's length, and comes from an ID
// whose first octet names that configuration and its length.
func FuzzRoute(f *testing.F) {
	g, _ := ForServer(42)
	cid, _ := g.GenerateConnectionID()
	f.Add(append([]byte{0x40}, cid.Bytes()...))
	f.Add(append([]byte{0xc0, 0, 0, 0, 1, byte(cid.Len())}, cid.Bytes()...))
	f.Add([]byte{0xc0, 0, 0, 0, 1, 255})
	f.Add([]byte{0x40, 0xe0, 1, 2})
	f.Add([]byte{})
	short := Config{ID: 1, ServerIDLen: 1, NonceLen: 4}
	d, err := NewDecoder(DefaultConfig, short)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, packet []byte) {
		sid, err := d.Route(packet)
		if err != nil {
			if !errors.Is(err, ErrUnroutable) {
				t.Fatalf("error %v does not wrap ErrUnroutable", err)
			}
			return
		}
		// sid aliases packet: its offset is the difference of capacities.
		i := cap(packet) - cap(sid)
		if len(sid) == 0 || i < 2 || !bytes.Equal(packet[i:i+len(sid)], sid) {
			t.Fatalf("server ID %x not after the first octet of an ID in %x", sid, packet)
		}
		first := packet[i-1]
		c := d.configs[first>>5]
		if c == nil || len(sid) != c.ServerIDLen || int(first&0x1f) != c.CIDLen()-1 {
			t.Fatalf("server ID %x after first octet %08b: no matching configuration", sid, first)
		}
	})
}

// FuzzServerID decodes arbitrary connection IDs, and checks that what it
// accepts re-encodes to the same bytes with that server ID and nonce.
func FuzzServerID(f *testing.F) {
	g, _ := ForServer(3)
	cid, _ := g.GenerateConnectionID()
	f.Add(cid.Bytes())
	f.Add([]byte{0xff})
	f.Add([]byte{})
	d, _ := NewDecoder(DefaultConfig)
	f.Fuzz(func(t *testing.T, b []byte) {
		sid, config, err := d.ServerID(b)
		if err != nil {
			if !errors.Is(err, ErrUnroutable) {
				t.Fatalf("error %v does not wrap ErrUnroutable", err)
			}
			return
		}
		g, err := NewGenerator(*d.configs[config], sid)
		if err != nil {
			t.Fatalf("decoded server ID %x rejected by the generator: %v", sid, err)
		}
		g.rand = bytes.NewReader(b[1+len(sid):])
		again, err := g.GenerateConnectionID()
		if err != nil || !bytes.Equal(again.Bytes(), b) {
			t.Fatalf("%x decoded to server ID %x, re-encodes to %x (%v)", b, sid, again.Bytes(), err)
		}
	})
}

// FuzzParseServerID: --server-id never panics, and what it accepts is a
// number that reads back from a decimal, or an IPv4 address's low 16 bits.
func FuzzParseServerID(f *testing.F) {
	for _, s := range []string{"0", "65535", "10.244.3.17", "fd00::1", "", "-1", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseServerID(s)
		if err != nil {
			return
		}
		if ip, perr := netip.ParseAddr(s); perr == nil {
			if b := ip.As4(); n != uint64(b[2])<<8|uint64(b[3]) {
				t.Fatalf("%q: %d, not the address's low 16 bits", s, n)
			}
			return
		}
		if back, perr := strconv.ParseUint(s, 10, 64); perr != nil || back != n {
			t.Fatalf("%q: %d, not its decimal value", s, n)
		}
	})
}
