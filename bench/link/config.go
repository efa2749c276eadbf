// Package link emulates a network link between an edge device and the cloud:
// a UDP relay on loopback that applies, per direction, a rate limit (a token
// bucket that counts IP and UDP headers) or a recorded capacity trace in
// mahimahi's format (Trace), a bounded drop-tail queue, random loss, a
// one-way delay and jitter, with sub-millisecond timing.
//
// Start one with NewRelay, point the QUIC client at Relay.Addr and let the
// relay forward to the QUIC server:
//
//	cfg, err := link.Parse("lte")  // a profile, or custom values
//	relay, err := link.NewRelay(ctx, "127.0.0.1:0", serverAddr, cfg, 1)
//	defer relay.Close()
//	// dial relay.Addr() instead of serverAddr
//
// Up is the direction from the edge (the client side, which sends to the
// relay) to the cloud (the target); Down is the way back.
package link

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Per-datagram header bytes that the rate limit counts on top of the UDP
// payload: an IPv4 header (20) plus a UDP header (8), or an IPv6 header (40)
// plus a UDP header. Link-layer framing is not counted.
const (
	HeaderIPv4 = 28
	HeaderIPv6 = 48
)

// Direction is the behaviour of one direction of a link. The zero value is a
// perfect link: no rate limit, no delay, no loss.
//
// A datagram goes through the stages in this order: random loss, the
// drop-tail queue in front of the rate limiter (or the trace), the rate
// limiter (or the trace), then the delay line (Delay plus jitter), after
// which it is sent on.
type Direction struct {
	// RateBps is the rate limit in bits per second, counting the UDP
	// payload plus the IP and UDP headers (HeaderIPv4 or HeaderIPv6).
	// Zero means no limit.
	RateBps float64
	// Trace, if set, takes the place of the rate limiter: the direction
	// delivers datagrams in the trace's opportunities, as mahimahi's mm-link
	// does (docs/LINKS.md). RateBps and BurstBytes must then be zero. The
	// trace's time 0 is the start of the relay.
	Trace *Trace
	// BurstBytes is the depth of the token bucket in bytes: how much an idle
	// link may send back to back at full speed. Zero means one datagram, so
	// an idle link lets a datagram through at once and a busy one spaces
	// datagrams by their size over the rate.
	BurstBytes int
	// Delay is the one-way propagation delay added after the rate limiter.
	Delay time.Duration
	// Jitter spreads the delay: each datagram gets Delay plus a uniform
	// random offset in [-Jitter, +Jitter], never below zero. Unless Reorder
	// is set, a datagram never leaves before the one in front of it, which
	// shifts the mean delay up a little when Jitter is large compared with
	// the spacing of datagrams.
	Jitter time.Duration
	// Loss is the probability, in [0, 1), that a datagram is dropped at
	// random (independently of the others) before it reaches the queue.
	Loss float64
	// QueueBytes bounds the bytes (headers included) waiting for the rate
	// limiter or the trace; a datagram that would exceed it is dropped
	// (drop-tail). Zero means no byte limit. Queue limits apply only with
	// a rate limit or a trace: without one nothing waits. With a trace, a
	// datagram leaves the queue when the first opportunity that carries
	// some of it comes, as in mm-link.
	QueueBytes int
	// QueuePackets bounds the number of datagrams waiting for the rate
	// limiter or the trace. Zero means no packet limit. If both limits are
	// zero the queue is bounded only by MaxBacklog.
	QueuePackets int
	// Reorder lets jitter reorder datagrams: each leaves at its own due time.
	Reorder bool
}

// MaxBacklog bounds the bytes a direction holds at once (queue and delay line
// together), whatever the configuration, so that a misconfigured link cannot
// exhaust memory. Datagrams beyond it are counted as queue drops.
const MaxBacklog = 256 << 20

// Config is a link: one Direction each way.
type Config struct {
	// Up is edge to cloud: datagrams the relay receives from its clients.
	Up Direction
	// Down is cloud to edge: datagrams the relay receives from the target.
	Down Direction
}

// Validate reports the first invalid value in d.
func (d Direction) Validate() error {
	switch {
	case math.IsNaN(d.RateBps) || math.IsInf(d.RateBps, 0) || d.RateBps < 0:
		return fmt.Errorf("rate %v bit/s: must be finite and not negative", d.RateBps)
	case d.RateBps > 0 && d.RateBps < 1000:
		return fmt.Errorf("rate %v bit/s: below 1 kbit/s", d.RateBps)
	case d.BurstBytes < 0:
		return fmt.Errorf("burst %d bytes: negative", d.BurstBytes)
	case d.Delay < 0 || d.Delay > time.Minute:
		return fmt.Errorf("delay %v: must be in [0, 1m]", d.Delay)
	case d.Jitter < 0 || d.Jitter > time.Minute:
		return fmt.Errorf("jitter %v: must be in [0, 1m]", d.Jitter)
	case math.IsNaN(d.Loss) || d.Loss < 0 || d.Loss >= 1:
		return fmt.Errorf("loss %v: must be in [0, 1)", d.Loss)
	case d.QueueBytes < 0:
		return fmt.Errorf("queue %d bytes: negative", d.QueueBytes)
	case d.QueuePackets < 0:
		return fmt.Errorf("queue %d packets: negative", d.QueuePackets)
	case d.Trace != nil && (d.RateBps != 0 || d.BurstBytes != 0):
		return fmt.Errorf("trace %s with rate %v bit/s and burst %d bytes: a trace sets the capacity, so rate and burst must be 0",
			d.Trace.Name(), d.RateBps, d.BurstBytes)
	}
	return nil
}

// Validate reports the first invalid value in c.
func (c Config) Validate() error {
	if err := c.Up.Validate(); err != nil {
		return fmt.Errorf("up: %w", err)
	}
	if err := c.Down.Validate(); err != nil {
		return fmt.Errorf("down: %w", err)
	}
	return nil
}

// Queue is the limit of a drop-tail queue: bytes (headers included),
// packets, or both; zero is no limit.
type Queue struct {
	Bytes, Packets int
}

// ParseQueue reads a queue limit as Parse's queue setting does: bytes
// ("64KiB", "100000") or packets ("50p"); "0" is no limit.
func ParseQueue(s string) (Queue, error) {
	var d Direction
	if err := set(&d, "queue", s, true); err != nil {
		return Queue{}, fmt.Errorf("queue %q: %w", s, err)
	}
	return Queue{Bytes: d.QueueBytes, Packets: d.QueuePackets}, nil
}

// String describes the limit; where only one is set (or none: "0"), it is
// what ParseQueue reads back.
func (q Queue) String() string {
	switch {
	case q.Bytes == 0 && q.Packets == 0:
		return "0"
	case q.Packets == 0:
		return strconv.Itoa(q.Bytes)
	case q.Bytes == 0:
		return strconv.Itoa(q.Packets) + "p"
	}
	return fmt.Sprintf("%d bytes and %d packets", q.Bytes, q.Packets)
}

// TraceLink is the link that mahimahi's mm-delay around mm-link emulates:
// each direction delivers datagrams in the opportunities of its trace (up
// for edge to cloud, down for the way back), behind a drop-tail queue of
// the given limit, and then delays them by oneWay. Both traces start when
// the relay starts. A nil trace leaves its direction's capacity unlimited.
func TraceLink(up, down *Trace, oneWay time.Duration, queue Queue) Config {
	d := func(t *Trace) Direction {
		return Direction{Trace: t, Delay: oneWay, QueueBytes: queue.Bytes, QueuePackets: queue.Packets}
	}
	return Config{Up: d(up), Down: d(down)}
}

// RTT is the round-trip time of the link for small datagrams on an idle
// link: the two one-way delays (jitter and queueing excluded).
func (c Config) RTT() time.Duration { return c.Up.Delay + c.Down.Delay }

// ErrUnknownProfile is returned by Profile for a name not in Profiles.
var ErrUnknownProfile = errors.New("unknown link profile")
