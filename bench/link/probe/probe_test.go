package probe

import (
	"context"
	"math"
	"net"
	"testing"
	"time"
)

func loopback(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestPingEcho(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	echo := loopback(t)
	done := make(chan error, 1)
	go func() { done <- Echo(ctx, echo) }()
	res, err := Ping(ctx, loopback(t), echo.LocalAddr(), PingConfig{Count: 50, Interval: time.Millisecond, Size: 200})
	if err != nil {
		t.Fatal(err)
	}
	if res.Received() != 50 || res.LossRate() != 0 {
		t.Errorf("%d of 50 replies on loopback", res.Received())
	}
	if q := res.Quantile(0.5); q <= 0 || q > time.Second {
		t.Errorf("median RTT %v on loopback", q)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Echo after cancel: %v", err)
	}
}

func TestPingNoEcho(t *testing.T) {
	silent := loopback(t)
	res, err := Ping(context.Background(), loopback(t), silent.LocalAddr(), PingConfig{Count: 5, Wait: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Received() != 0 || res.LossRate() != 1 || res.Quantile(0.5) != 0 {
		t.Errorf("result %+v from a socket that never answers", res)
	}
}

func TestPingConfigErrors(t *testing.T) {
	for _, cfg := range []PingConfig{{Count: 1, Size: 10}, {Count: 1, Size: 70000}, {Count: -1}} {
		if _, err := Ping(context.Background(), loopback(t), loopback(t).LocalAddr(), cfg); err == nil {
			t.Errorf("Ping accepted %+v", cfg)
		}
	}
}

func TestQuantile(t *testing.T) {
	r := PingResult{Sent: 5, RTTs: []time.Duration{5, 1, 4, 2, 3}}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0, 1}, {0.5, 3}, {1, 5}, {0.25, 2}} {
		if got := r.Quantile(tc.q); got != tc.want {
			t.Errorf("Quantile(%v) = %v, want %v", tc.q, got, tc.want)
		}
	}
}

func TestQUICGoodputDirect(t *testing.T) {
	for _, dir := range []Direction{Upload, Download} {
		server, client := loopback(t), loopback(t)
		g, err := QUICGoodput(context.Background(), client, server, server.LocalAddr(), 1<<20, dir)
		if err != nil {
			t.Fatal(err)
		}
		if g.Bytes != 1<<20 || g.WindowBytes <= 0 || g.WindowBytes > g.Bytes || g.Window <= 0 || g.Window > g.Elapsed || g.Bps() <= 0 {
			t.Errorf("direction %d: implausible result %+v", dir, g)
		}
	}
	if _, err := QUICGoodput(context.Background(), loopback(t), loopback(t), loopback(t).LocalAddr(), 0, Upload); err == nil {
		t.Error("size 0 accepted")
	}
}

func TestPayloadFraction(t *testing.T) {
	// (1280 - 29) / (1280 + 28)
	if got := PayloadFraction(28); math.Abs(got-1251.0/1308) > 1e-12 {
		t.Errorf("PayloadFraction(28) = %v", got)
	}
}

func TestFlood(t *testing.T) {
	dst := loopback(t)
	cfg := FloodConfig{RateBps: 10e6, Header: 28, Size: 1222, Duration: 300 * time.Millisecond, Wait: 200 * time.Millisecond}
	res, err := Flood(context.Background(), loopback(t), dst, dst.LocalAddr(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	// 10 Mbit/s of 1250-byte datagrams is one a millisecond.
	if res.Sent != 300 || len(res.Arrivals) != 300 {
		t.Errorf("sent %d, %d arrived; want 300 of 300 on loopback", res.Sent, len(res.Arrivals))
	}
	// Every arrival comes within Wait of the last send, so within 600 ms.
	w := res.Windows(res.Start.Add(-100*time.Millisecond), 100*time.Millisecond, 7, 1250)
	var sum int64
	for _, b := range w {
		sum += b
	}
	if sum != int64(len(res.Arrivals))*1250 || w[0] != 0 {
		t.Errorf("windows %v hold %d bytes, want %d, none before the start", w, sum, len(res.Arrivals)*1250)
	}
	if _, err := Flood(context.Background(), loopback(t), dst, dst.LocalAddr(), FloodConfig{RateBps: 1e6, Size: 4, Duration: time.Second}); err == nil {
		t.Error("a 4-byte flood datagram accepted")
	}
}
