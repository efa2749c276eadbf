package quiclb

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
)

// TestDraftVector reproduces the draft's unencrypted test vector
// (draft-ietf-quic-load-balancers-21, "Unencrypted CIDs", first line:
// config 0, server ID c4605e, nonce 4504cc4f, CID 07c4605e4504cc4f) and
// decodes it back.
func TestDraftVector(t *testing.T) {
	c := Config{ID: 0, ServerIDLen: 3, NonceLen: 4}
	sid, _ := hex.DecodeString("c4605e")
	nonce, _ := hex.DecodeString("4504cc4f")
	want, _ := hex.DecodeString("07c4605e4504cc4f")
	g, err := NewGenerator(c, sid)
	if err != nil {
		t.Fatal(err)
	}
	g.rand = bytes.NewReader(nonce)
	cid, err := g.GenerateConnectionID()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(cid.Bytes(), want) {
		t.Fatalf("CID %x, the draft says %x", cid.Bytes(), want)
	}
	d, err := NewDecoder(c)
	if err != nil {
		t.Fatal(err)
	}
	got, config, err := d.ServerID(want)
	if err != nil || config != 0 || !bytes.Equal(got, sid) {
		t.Fatalf("decode %x: server ID %x config %d err %v, want %x config 0", want, got, config, err, sid)
	}
}

// TestLayout checks every valid length pair and every config ID: the
// first octet holds the config ID and the length minus one, the server ID
// follows, the length is constant and what ConnectionIDLen says.
func TestLayout(t *testing.T) {
	for id := uint8(0); id <= MaxConfigID; id++ {
		for sl := MinServerIDLen; sl <= MaxServerIDLen; sl++ {
			for nl := MinNonceLen; nl <= MaxNonceLen && sl+nl <= MaxPlaintextLen; nl++ {
				c := Config{ID: id, ServerIDLen: sl, NonceLen: nl}
				sid := bytes.Repeat([]byte{0xa5}, sl)
				sid[0] = byte(sl)
				g, err := NewGenerator(c, sid)
				if err != nil {
					t.Fatalf("%+v: %v", c, err)
				}
				if g.ConnectionIDLen() != 1+sl+nl {
					t.Fatalf("%+v: ConnectionIDLen %d, want %d", c, g.ConnectionIDLen(), 1+sl+nl)
				}
				for range 3 {
					cid, err := g.GenerateConnectionID()
					if err != nil {
						t.Fatal(err)
					}
					b := cid.Bytes()
					if len(b) != g.ConnectionIDLen() {
						t.Fatalf("%+v: %d-byte CID, want %d", c, len(b), g.ConnectionIDLen())
					}
					if b[0]>>5 != id || int(b[0]&0x1f) != len(b)-1 {
						t.Fatalf("%+v: first octet %08b: want config %03b and length %d", c, b[0], id, len(b)-1)
					}
					if !bytes.Equal(b[1:1+sl], sid) {
						t.Fatalf("%+v: server ID bytes %x, want %x", c, b[1:1+sl], sid)
					}
				}
			}
		}
	}
}

// TestUnique draws many IDs of one server: all differ, and so do their
// nonces (the only part that can).
func TestUnique(t *testing.T) {
	g, err := ForServer(7)
	if err != nil {
		t.Fatal(err)
	}
	const n = 100_000
	seen := make(map[string]struct{}, n)
	for range n {
		cid, err := g.GenerateConnectionID()
		if err != nil {
			t.Fatal(err)
		}
		k := string(cid.Bytes())
		if _, dup := seen[k]; dup {
			t.Fatalf("connection ID %x generated twice in %d", cid.Bytes(), len(seen))
		}
		seen[k] = struct{}{}
	}
}

// TestServerIDRoundTrip encodes server numbers, generates IDs with them,
// and decodes the same bytes and number back.
func TestServerIDRoundTrip(t *testing.T) {
	cases := []struct {
		c Config
		n uint64
	}{
		{DefaultConfig, 0}, {DefaultConfig, 1}, {DefaultConfig, 258}, {DefaultConfig, 65535},
		{Config{ID: 3, ServerIDLen: 1, NonceLen: 18}, 200},
		{Config{ID: 6, ServerIDLen: 8, NonceLen: 4}, 1<<64 - 1},
		{Config{ID: 5, ServerIDLen: 15, NonceLen: 4}, 1 << 40},
	}
	for _, tc := range cases {
		sid, err := tc.c.ServerID(tc.n)
		if err != nil {
			t.Fatalf("%+v %d: %v", tc.c, tc.n, err)
		}
		if len(sid) != tc.c.ServerIDLen {
			t.Fatalf("%+v %d: %d-byte server ID", tc.c, tc.n, len(sid))
		}
		var back uint64
		for _, b := range sid {
			back = back<<8 | uint64(b)
		}
		if back != tc.n {
			t.Fatalf("%+v: server ID %x reads %d, want %d", tc.c, sid, back, tc.n)
		}
		g, err := NewGenerator(tc.c, sid)
		if err != nil {
			t.Fatal(err)
		}
		d, err := NewDecoder(tc.c)
		if err != nil {
			t.Fatal(err)
		}
		cid, _ := g.GenerateConnectionID()
		got, config, err := d.ServerID(cid.Bytes())
		if err != nil || config != tc.c.ID || !bytes.Equal(got, sid) {
			t.Fatalf("%+v: decode %x: %x config %d err %v, want %x", tc.c, cid.Bytes(), got, config, err, sid)
		}
		if !bytes.Equal(g.ServerID(), sid) {
			t.Fatalf("ServerID() %x, want %x", g.ServerID(), sid)
		}
	}
	if _, err := DefaultConfig.ServerID(65536); err == nil {
		t.Fatal("server ID 65536 accepted in 2 bytes")
	}
	if _, err := ForServer(1 << 16); err == nil {
		t.Fatal("ForServer(65536) accepted")
	}
}

func TestValidate(t *testing.T) {
	bad := []Config{
		{ID: 7, ServerIDLen: 2, NonceLen: 8},
		{ID: 0, ServerIDLen: 0, NonceLen: 8},
		{ID: 0, ServerIDLen: 16, NonceLen: 4},
		{ID: 0, ServerIDLen: 2, NonceLen: 3},
		{ID: 0, ServerIDLen: 1, NonceLen: 19},
		{ID: 0, ServerIDLen: 10, NonceLen: 10},
	}
	for _, c := range bad {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v: valid", c)
		}
		if _, err := NewGenerator(c, make([]byte, max(c.ServerIDLen, 0))); err == nil {
			t.Errorf("%+v: NewGenerator accepted it", c)
		}
	}
	if _, err := NewGenerator(DefaultConfig, []byte{1}); err == nil {
		t.Error("NewGenerator accepted a 1-byte server ID for 2-byte configuration")
	}
	if _, err := NewDecoder(DefaultConfig, Config{ID: 0, ServerIDLen: 1, NonceLen: 4}); err == nil {
		t.Error("NewDecoder accepted two configurations with ID 0")
	}
}

// TestUnroutable lists the IDs a balancer must send by its fallback.
func TestUnroutable(t *testing.T) {
	d, err := NewDecoder(DefaultConfig, Config{ID: 2, ServerIDLen: 1, NonceLen: 4})
	if err != nil {
		t.Fatal(err)
	}
	g, _ := ForServer(9)
	cid, _ := g.GenerateConnectionID()
	good := cid.Bytes()
	cases := map[string][]byte{
		"empty":              {},
		"reserved 0b111":     append([]byte{0b111<<5 | 10}, good[1:]...),
		"unknown config 1":   append([]byte{1<<5 | 10}, good[1:]...),
		"truncated":          good[:len(good)-1],
		"too long":           append(append([]byte(nil), good...), 0),
		"wrong length field": append([]byte{0<<5 | 9}, good[1:]...),
	}
	for name, b := range cases {
		if _, _, err := d.ServerID(b); !errors.Is(err, ErrUnroutable) {
			t.Errorf("%s (%x): err %v, want ErrUnroutable", name, b, err)
		}
	}
}

// TestRoute builds long and short header packets around a generated ID.
func TestRoute(t *testing.T) {
	g, _ := ForServer(0x1234)
	d, _ := NewDecoder(DefaultConfig)
	cid, _ := g.GenerateConnectionID()
	payload := bytes.Repeat([]byte{0xee}, 40)
	long := append([]byte{0xc0, 0, 0, 0, 1, byte(cid.Len())}, cid.Bytes()...)
	long = append(append(long, 8, 1, 2, 3, 4, 5, 6, 7, 8), payload...)
	short := append(append([]byte{0x40}, cid.Bytes()...), payload...)
	for name, p := range map[string][]byte{"long": long, "short": short} {
		sid, err := d.Route(p)
		if err != nil || !bytes.Equal(sid, []byte{0x12, 0x34}) {
			t.Errorf("%s header: server ID %x err %v, want 1234", name, sid, err)
		}
	}
	unroutable := map[string][]byte{
		"empty":                 {},
		"long header cut":       long[:5],
		"long header ID cut":    long[:6+cid.Len()-1],
		"version negotiation":   append([]byte{0x80, 0, 0, 0, 0}, long[5:]...),
		"client's random ID":    append([]byte{0xc0, 0, 0, 0, 1, 8}, 0xff, 1, 2, 3, 4, 5, 6, 7),
		"short header cut":      short[:cid.Len()],
		"short header reserved": append([]byte{0x40, 0xe0}, payload...),
	}
	for name, p := range unroutable {
		if _, err := d.Route(p); !errors.Is(err, ErrUnroutable) {
			t.Errorf("%s: err %v, want ErrUnroutable", name, err)
		}
	}
}

func TestParseServerID(t *testing.T) {
	good := map[string]uint64{"0": 0, "7": 7, "65535": 65535, "10.244.3.17": 3<<8 | 17, "192.168.255.254": 0xfffe}
	for s, want := range good {
		n, err := ParseServerID(s)
		if err != nil || n != want {
			t.Errorf("ParseServerID(%q) = %d, %v; want %d", s, n, err, want)
		}
		if _, err := ForServer(n); err != nil {
			t.Errorf("ForServer(%d) from %q: %v", n, s, err)
		}
	}
	for _, s := range []string{"", "-1", "x", "fd00::1", "10.0.0"} {
		if n, err := ParseServerID(s); err == nil {
			t.Errorf("ParseServerID(%q) = %d, want an error", s, n)
		}
	}
}
