package e2e

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/splitstream/splitstream/edge"
	"github.com/splitstream/splitstream/internal/certs"
)

// TestWrongCAEndsTheRun: a server certificate from another CA is a
// permanent error: the run ends at the first image with the cause.
func TestWrongCAEndsTheRun(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	other, err := certs.New(certs.DefaultHosts)
	if err != nil {
		t.Fatal(err)
	}
	_, cliTLS, err := other.Configs("localhost", true)
	if err != nil {
		t.Fatal(err)
	}
	client, err := edge.NewClient(f.addr, edge.ClientOptions{TLS: cliTLS, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	agent, err := edge.NewAgent(f.newEncoder(t), client, edge.AgentOptions{Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	items := make(chan edge.Item, 100)
	for i := range 100 {
		items <- edge.Item{Index: i, Name: "img" + string(rune('a'+i%26)), Data: pngImage(t, uint64(i))}
	}
	close(items)
	var recs []edge.Record
	start := time.Now()
	err = agent.Run(context.Background(), items, func(r edge.Record) { recs = append(recs, r) })
	took := time.Since(start)
	if !errors.Is(err, edge.ErrPermanent) {
		t.Fatalf("run ended with %v, want a permanent error", err)
	}
	t.Logf("ended after %v and %d records: %v", took.Round(time.Millisecond), len(recs), err)
	if took > 5*time.Second || len(recs) == 0 || len(recs) > 2 {
		t.Fatalf("took %v with %d records", took, len(recs))
	}
	if e := recs[0].Error; !strings.Contains(e, f.addr) || !strings.Contains(e, "certificate") {
		t.Fatalf("record error %q does not name the server and the cause", e)
	}
}

// TestDeadServerOpensTheBreaker: with no server on the port, the breaker
// opens after three failed attempts, and the requests after it fail at
// once, naming the server and the cause.
func TestDeadServerOpensTheBreaker(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	pc, err := net.ListenPacket("udp", "127.0.0.1:0") // a port nobody answers on
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	client, err := edge.NewClient(addr, edge.ClientOptions{TLS: f.client, Logger: quiet, DialTimeout: 300 * time.Millisecond,
		MinBackoff: 10 * time.Millisecond, BreakerCooldown: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	h, payload := f.request(t, f.newEncoder(t), pngImage(t, 1), 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	_, err = client.Do(ctx, h, payload)
	first := time.Since(start)
	if !errors.Is(err, edge.ErrCircuitOpen) || !strings.Contains(err.Error(), addr) {
		t.Fatalf("first request: %v", err)
	}
	start = time.Now()
	for range 100 {
		if _, err = client.Do(ctx, h, payload); !errors.Is(err, edge.ErrCircuitOpen) {
			t.Fatalf("with the breaker open: %v", err)
		}
	}
	t.Logf("first request failed after %v; 100 more in %v: %v", first.Round(time.Millisecond), time.Since(start).Round(time.Microsecond), err)
	if time.Since(start) > time.Second {
		t.Fatalf("requests with the breaker open took %v", time.Since(start))
	}
}
