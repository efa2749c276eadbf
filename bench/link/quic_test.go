package link_test

import (
	"context"
	"math"
	"net"
	"testing"
	"time"

	"github.com/splitstream/splitstream/bench/link"
	"github.com/splitstream/splitstream/bench/link/probe"
)

// exclusive holds the machine-wide timing lock for the rest of the test, so
// that timing tests of other packages do not run at the same time.
func exclusive(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	release, err := probe.Exclusive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(release)
}

func listenLoopback(t testing.TB) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// shaped is a symmetric test link: rate each way, 10 ms one-way delay, and a
// drop-tail queue of two bandwidth-delay products (at least 32 KB), enough
// for a single QUIC flow to keep the link busy.
func shaped(rateBps float64) link.Config {
	const delay = 10 * time.Millisecond
	q := max(32<<10, int(2*rateBps/8*(2*delay).Seconds()))
	d := link.Direction{RateBps: rateBps, Delay: delay, QueueBytes: q}
	return link.Config{Up: d, Down: d}
}

// TestQUICGoodput checks the rate limiter end to end: a single QUIC stream
// through the relay must reach, within 5%, the goodput a saturated link
// gives, which is the rate times the share of stream data in each full QUIC
// packet counted with its IP and UDP headers (probe.PayloadFraction). It
// also checks the link's own utilisation: the bytes (headers included) the
// relay forwarded in the direction of the data over the transfer.
func TestQUICGoodput(t *testing.T) {
	exclusive(t)
	tests := []struct {
		name string
		rate float64
		size int64
		dir  probe.Direction
	}{
		{"up/1Mbit", 1e6, 280 << 10, probe.Upload},
		{"up/5Mbit", 5e6, 1400 << 10, probe.Upload},
		{"up/50Mbit", 50e6, 14 << 20, probe.Upload},
		{"down/5Mbit", 5e6, 1400 << 10, probe.Download},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.rate * probe.PayloadFraction(link.HeaderIPv4)
			// A starved CPU (this machine is shared) can only slow the
			// QUIC sender down, never push it past the link's rate, so a
			// transfer that falls short is tried again, up to three times.
			var ratio float64
			watch := probe.WatchCPU()
			for attempt := 1; attempt <= 3; attempt++ {
				ratio = goodputRatio(t, tc.rate, tc.size, tc.dir, want)
				if ratio > 1.05 || ratio >= 0.95 {
					break
				}
				t.Logf("attempt %d: %.1f%% short; trying again", attempt, (1-ratio)*100)
			}
			judgeGoodput(t, ratio, want, watch)
		})
	}
}

// judgeGoodput fails a goodput ratio more than 5% off 1, except one that is
// short on a machine whose CPUs were busy while watch ran: a starved CPU
// slows the QUIC sender and the relay down, so such a shortfall says nothing
// about the link, and the test skips with the figures instead.
func judgeGoodput(t *testing.T, ratio, want float64, watch probe.CPUWatch) {
	t.Helper()
	if math.Abs(ratio-1) <= 0.05 {
		return
	}
	if busy, figures := watch.Busy(); busy && ratio < 1 {
		t.Skipf("SKIPPED: goodput %.1f%% below the expected %.3f Mbit/s on a busy machine (%s); cannot judge the link", (1-ratio)*100, want/1e6, figures)
	}
	t.Errorf("goodput is %.1f%% off the expected %.3f Mbit/s", (ratio-1)*100, want/1e6)
}

// goodputRatio runs one transfer through a relay and returns the goodput
// over the expected one.
func goodputRatio(t *testing.T, rate float64, size int64, dir probe.Direction, want float64) float64 {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	server := listenLoopback(t)
	relay, err := link.NewRelay(ctx, "127.0.0.1:0", server.LocalAddr().String(), shaped(rate), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	client := listenLoopback(t)
	g, err := probe.QUICGoodput(ctx, client, server, relay.Addr(), size, dir)
	if err != nil {
		t.Fatal(err)
	}
	st := relay.Stats()
	data := st.Up
	if dir == probe.Download {
		data = st.Down
	}
	ratio := g.Bps() / want
	// Link utilisation: wire bytes over the whole transfer, which includes
	// the handshake and slow start, so it is a lower bound.
	util := float64(data.WireBytes) * 8 / g.Elapsed.Seconds() / rate
	t.Logf("goodput %.3f Mbit/s over %v, expected %.3f: ratio %.4f; wire utilisation over the whole %v: %.4f; lost %d, queue drops %d, forwarded %d datagrams (mean %d bytes), released late by %v on average, %v at most",
		g.Bps()/1e6, g.Window.Round(time.Millisecond), want/1e6, ratio, g.Elapsed.Round(time.Millisecond), util,
		data.Lost, data.Dropped, data.Forwarded, data.Bytes/max(1, data.Forwarded), data.MeanLate(), data.LateMax)
	if util > 1.01 {
		t.Errorf("link carried %.3f of its rate", util)
	}
	return ratio
}
