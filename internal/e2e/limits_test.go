package e2e

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/splitstream/splitstream/cloud"
	"github.com/splitstream/splitstream/codec"
	"github.com/splitstream/splitstream/wire"
)

// dialFrom opens a raw QUIC connection to the fixture's cloud from the
// local IP ip.
func (f *fixture) dialFrom(t *testing.T, ip string) (*quic.Conn, error) {
	t.Helper()
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatal(err)
	}
	tr := &quic.Transport{Conn: pc}
	t.Cleanup(func() { tr.Close() })
	srv, _ := net.ResolveUDPAddr("udp", f.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := tr.Dial(ctx, srv, f.client, &quic.Config{})
	if err == nil {
		t.Cleanup(func() { c.CloseWithError(0, "") })
	}
	return c, err
}

// send opens a stream and writes b without closing the send side, as a
// peer that stalls would.
func send(t *testing.T, c *quic.Conn, b []byte) *quic.Stream {
	t.Helper()
	str, err := c.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := str.Write(b); err != nil {
		t.Fatal(err)
	}
	return str
}

func readReply(t *testing.T, str *quic.Stream) *wire.Reply {
	t.Helper()
	str.SetReadDeadline(time.Now().Add(5 * time.Second))
	r, err := wire.ReadReply(str)
	if err != nil {
		t.Fatalf("no reply: %v", err)
	}
	return r
}

func (f *fixture) header(claim uint32) wire.Header {
	s := f.b.Shape()
	return wire.Header{Codec: uint8(codec.IDLearned), Tasks: wire.AllTasks, Channels: uint16(s.C), Height: uint16(s.H), Width: uint16(s.W),
		RequestID: 7, Bundle: f.b.ID, PayloadLen: claim}
}

// TestPayloadRefusedFromHeader: a claim over the bundle's limit is answered
// from the header alone (the payload is never sent), with STOP_SENDING.
func TestPayloadRefusedFromHeader(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	c, err := f.dialFrom(t, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	limit := cloud.PayloadLimit(codec.IDLearned, f.b.Shape(), wire.MaxPayload)
	for _, claim := range []uint32{limit + 1, 16 << 20} {
		h := f.header(claim)
		str := send(t, c, wire.AppendHeader(nil, &h))
		r := readReply(t, str)
		if r.Status != wire.StatusBadRequest || !strings.Contains(r.Message, "over the limit") || r.RequestID != 7 {
			t.Fatalf("claim %d: %v %q", claim, r.Status, r.Message)
		}
		// STOP_SENDING: writing more fails with the cloud's error code.
		deadline := time.Now().Add(2 * time.Second)
		for {
			_, err := str.Write(make([]byte, 1024))
			var se *quic.StreamError
			if errors.As(err, &se) {
				if se.ErrorCode != 1 {
					t.Fatalf("stream error code %d, want 1", se.ErrorCode)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("claim %d: no STOP_SENDING (last write err %v)", claim, err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// TestInflightByteBudget: payload bytes are charged as they arrive; stalled
// requests with a header only cost nothing, and a request that would take
// the cloud over its budget is answered overloaded with a retry-after hint.
func TestInflightByteBudget(t *testing.T) {
	f := newFixture(t, fixtureOptions{server: cloud.Options{MaxInflightBytes: 40 << 10}})
	c, err := f.dialFrom(t, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	h := f.header(cloud.PayloadLimit(codec.IDLearned, f.b.Shape(), wire.MaxPayload))
	for range 20 { // header only: no budget taken
		send(t, c, wire.AppendHeader(nil, &h))
	}
	// Two requests with part of their payload hold 16 KiB each.
	for range 2 {
		send(t, c, append(wire.AppendHeader(nil, &h), 1, 2, 3))
	}
	time.Sleep(100 * time.Millisecond)
	str := send(t, c, append(wire.AppendHeader(nil, &h), 1, 2, 3))
	r := readReply(t, str)
	if r.Status != wire.StatusOverloaded || r.RetryAfter() <= 0 || !strings.Contains(r.Message, "budget") {
		t.Fatalf("over the budget: %v %q (retry after %v)", r.Status, r.Message, r.RetryAfter())
	}
	t.Logf("%v: %s, retry after %v", r.Status, r.Message, r.RetryAfter())
}

// TestConnectionLimits: MaxConnsPerAddr refuses a third connection from one
// address while another address still connects; MaxConns refuses any
// connection over it.
func TestConnectionLimits(t *testing.T) {
	f := newFixture(t, fixtureOptions{server: cloud.Options{MaxConns: 3, MaxConnsPerAddr: 2}})
	for i := range 2 {
		if _, err := f.dialFrom(t, "127.0.0.1"); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
	}
	if _, err := f.dialFrom(t, "127.0.0.1"); err == nil {
		t.Fatal("third connection from one address accepted")
	} else {
		t.Logf("refused: %v", err)
	}
	if _, err := f.dialFrom(t, "127.0.0.2"); err != nil {
		t.Fatalf("connection from another address: %v", err)
	}
	if _, err := f.dialFrom(t, "127.0.0.3"); err == nil {
		t.Fatal("connection over MaxConns accepted")
	}
}

// TestHandlerLimitAndTimeouts: streams over MaxHandlers are reset with code
// 3; a silent stream is answered when HeaderTimeout passes.
func TestHandlerLimitAndTimeouts(t *testing.T) {
	f := newFixture(t, fixtureOptions{server: cloud.Options{MaxHandlers: 2, HeaderTimeout: 300 * time.Millisecond}})
	c, err := f.dialFrom(t, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	silent := []*quic.Stream{send(t, c, nil), send(t, c, []byte{'S'})}
	time.Sleep(50 * time.Millisecond)
	over := send(t, c, []byte{'S'})
	over.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = wire.ReadReply(over)
	var se *quic.StreamError
	if !errors.As(err, &se) || se.ErrorCode != 3 {
		t.Fatalf("stream over MaxHandlers: %v, want a reset with code 3", err)
	}
	for _, str := range silent {
		start := time.Now()
		r := readReply(t, str)
		if r.Status != wire.StatusBadRequest || !strings.Contains(r.Message, "read timeout") {
			t.Fatalf("silent stream: %v %q", r.Status, r.Message)
		}
		t.Logf("silent stream answered after %v: %s", time.Since(start).Round(time.Millisecond), r.Message)
	}
}

// TestShutdownResetsArrivingRequests: a stalled request does not hold up a
// graceful shutdown; its stream is reset without a reply.
func TestShutdownResetsArrivingRequests(t *testing.T) {
	f := newFixture(t, fixtureOptions{server: cloud.Options{ReadTimeout: time.Minute, HeaderTimeout: time.Minute}})
	c, err := f.dialFrom(t, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	h := f.header(100)
	str := send(t, c, wire.AppendHeader(nil, &h))
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	f.shutdown(t)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("shutdown took %v", d)
	}
	str.SetReadDeadline(time.Now().Add(5 * time.Second))
	if r, err := wire.ReadReply(str); err == nil {
		t.Fatalf("stalled request got a reply %v", r.Status)
	}
}
