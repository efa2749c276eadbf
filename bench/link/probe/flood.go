package probe

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"
)

// floodHeader is the part of a flood datagram the receiver reads back: a
// magic number and the sequence number.
const floodHeader = 4 + 8

const floodMagic = 0x73666c64 // "sfld"

// FloodConfig says how to flood a link.
type FloodConfig struct {
	// RateBps is the offered rate in bits per second, counting Size plus
	// Header bytes per datagram.
	RateBps float64
	// Header is the bytes per datagram that the rate counts besides the
	// UDP payload: 28 for IPv4 (link.HeaderIPv4).
	Header int
	// Size is the UDP payload of each datagram, at least 12 bytes.
	Size int
	// Duration is how long to send.
	Duration time.Duration
	// Wait is how long to go on receiving after the last send; 0 means 1 s.
	Wait time.Duration
}

// FloodResult says when each datagram of a flood arrived.
type FloodResult struct {
	Start    time.Time       // when the first datagram was sent
	Sent     int             // datagrams sent
	Arrivals []time.Duration // receive times after Start, in the order they came
}

// Flood sends datagrams of cfg.Size bytes from src to target at
// cfg.RateBps for cfg.Duration, and records when each reaches dst (the
// socket that target, a link, forwards to). Sends are paced in bunches where
// the rate is finer than Go's timers (about 1 ms); a sender that falls
// behind catches up at once. Duplicate and foreign datagrams are ignored.
func Flood(ctx context.Context, src, dst net.PacketConn, target net.Addr, cfg FloodConfig) (FloodResult, error) {
	if cfg.Wait == 0 {
		cfg.Wait = time.Second
	}
	if cfg.Size < floodHeader || cfg.Size > 65507 || cfg.Header < 0 || !(cfg.RateBps > 0) || cfg.Duration <= 0 {
		return FloodResult{}, fmt.Errorf("flood: size %d, header %d, rate %v or duration %v out of range", cfg.Size, cfg.Header, cfg.RateBps, cfg.Duration)
	}
	gap := time.Duration(float64(cfg.Size+cfg.Header) * 8 / cfg.RateBps * float64(time.Second))
	count := int(cfg.Duration / max(gap, 1))
	seen := make([]bool, count)
	res := FloodResult{Start: time.Now()}
	recvDone := make(chan error, 1)
	go func() {
		buf := make([]byte, 65535)
		for len(res.Arrivals) < count {
			n, _, err := dst.ReadFrom(buf)
			now := time.Since(res.Start)
			if err != nil {
				recvDone <- err
				return
			}
			if n < floodHeader || binary.BigEndian.Uint32(buf) != floodMagic {
				continue
			}
			seq := binary.BigEndian.Uint64(buf[4:])
			if seq >= uint64(count) || seen[seq] {
				continue
			}
			seen[seq] = true
			res.Arrivals = append(res.Arrivals, now)
		}
		recvDone <- nil
	}()

	msg := make([]byte, cfg.Size)
	binary.BigEndian.PutUint32(msg, floodMagic)
	for res.Sent < count && ctx.Err() == nil {
		if d := time.Until(res.Start.Add(time.Duration(res.Sent) * gap)); d > 0 {
			time.Sleep(d)
		}
		binary.BigEndian.PutUint64(msg[4:], uint64(res.Sent))
		if _, err := src.WriteTo(msg, target); err != nil {
			dst.SetReadDeadline(time.Now())
			<-recvDone
			dst.SetReadDeadline(time.Time{})
			return FloodResult{}, fmt.Errorf("flood: send %d to %s: %w", res.Sent, target, err)
		}
		res.Sent++
	}
	dst.SetReadDeadline(time.Now().Add(cfg.Wait))
	stop := context.AfterFunc(ctx, func() { dst.SetReadDeadline(time.Now()) })
	err := <-recvDone
	stop()
	dst.SetReadDeadline(time.Time{})
	var ne net.Error
	if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
		return res, fmt.Errorf("flood: receive: %w", err)
	}
	if ctx.Err() != nil {
		return res, fmt.Errorf("flood: %w", ctx.Err())
	}
	return res, nil
}

// Windows counts the arrivals in each of n windows of the given length,
// the first starting at origin (say, the start of a link's trace plus its
// delay), times bytesEach (a datagram's size as the link counts it).
// Arrivals outside the windows are not counted.
func (r FloodResult) Windows(origin time.Time, window time.Duration, n int, bytesEach int) []int64 {
	out := make([]int64, n)
	if window <= 0 {
		return out
	}
	shift := r.Start.Sub(origin)
	for _, a := range r.Arrivals {
		at := a + shift
		if at < 0 {
			continue
		}
		if k := at / window; k < time.Duration(n) {
			out[k] += int64(bytesEach)
		}
	}
	return out
}
