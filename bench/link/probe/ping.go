package probe

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"slices"
	"time"
)

// pingHeader is the part of a ping datagram the prober reads back: a magic
// number, the sequence number and the send time.
const pingHeader = 4 + 8 + 8

const pingMagic = 0x73706e67 // "spng"

// Echo sends every datagram it receives on conn back to its sender, until
// ctx is done or conn is closed. It returns nil when ctx ends it.
func Echo(ctx context.Context, conn net.PacketConn) error {
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Now()) })
	defer stop()
	buf := make([]byte, 65535)
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			continue
		}
		conn.WriteTo(buf[:n], from) // a failed echo is a lost ping
	}
}

// PingConfig says how to ping.
type PingConfig struct {
	Count    int           // datagrams to send
	Interval time.Duration // between sends; sends are bunched when it is under Go's timer resolution (about 1 ms)
	Size     int           // UDP payload bytes, at least 20; 0 means 64
	Wait     time.Duration // how long to wait for replies after the last send; 0 means 1 s
}

// PingResult holds the round-trip times of the replies that came back.
type PingResult struct {
	Sent int
	RTTs []time.Duration // in the order replies arrived
}

// Received is the number of replies.
func (r PingResult) Received() int { return len(r.RTTs) }

// LossRate is the share of pings without a reply.
func (r PingResult) LossRate() float64 {
	if r.Sent == 0 {
		return 0
	}
	return 1 - float64(len(r.RTTs))/float64(r.Sent)
}

// Quantile returns the q-quantile (0 to 1) of the round-trip times, or 0 if
// there are none.
func (r PingResult) Quantile(q float64) time.Duration {
	if len(r.RTTs) == 0 {
		return 0
	}
	s := slices.Clone(r.RTTs)
	slices.Sort(s)
	i := int(q * float64(len(s)-1))
	return s[max(0, min(i, len(s)-1))]
}

// Ping sends cfg.Count datagrams from conn to target, which must echo them
// (see Echo), and times the replies. Duplicate and foreign datagrams are
// ignored.
func Ping(ctx context.Context, conn net.PacketConn, target net.Addr, cfg PingConfig) (PingResult, error) {
	if cfg.Size == 0 {
		cfg.Size = 64
	}
	if cfg.Wait == 0 {
		cfg.Wait = time.Second
	}
	if cfg.Size < pingHeader || cfg.Size > 65507 || cfg.Count < 0 {
		return PingResult{}, fmt.Errorf("ping: size %d or count %d out of range", cfg.Size, cfg.Count)
	}
	start := time.Now()
	seen := make([]bool, cfg.Count)
	res := PingResult{Sent: cfg.Count}
	recvDone := make(chan error, 1)
	go func() {
		buf := make([]byte, 65535)
		for len(res.RTTs) < cfg.Count {
			n, _, err := conn.ReadFrom(buf)
			now := time.Now()
			if err != nil {
				recvDone <- err
				return
			}
			if n < pingHeader || binary.BigEndian.Uint32(buf) != pingMagic {
				continue
			}
			seq := binary.BigEndian.Uint64(buf[4:])
			sent := time.Duration(binary.BigEndian.Uint64(buf[12:]))
			if seq >= uint64(cfg.Count) || seen[seq] {
				continue
			}
			seen[seq] = true
			res.RTTs = append(res.RTTs, now.Sub(start)-sent)
		}
		recvDone <- nil
	}()

	msg := make([]byte, cfg.Size)
	binary.BigEndian.PutUint32(msg, pingMagic)
	for i := 0; i < cfg.Count && ctx.Err() == nil; i++ {
		if d := time.Until(start.Add(time.Duration(i) * cfg.Interval)); d > 0 {
			time.Sleep(d)
		}
		binary.BigEndian.PutUint64(msg[4:], uint64(i))
		binary.BigEndian.PutUint64(msg[12:], uint64(time.Since(start)))
		if _, err := conn.WriteTo(msg, target); err != nil {
			conn.SetReadDeadline(time.Now())
			<-recvDone
			conn.SetReadDeadline(time.Time{})
			return PingResult{}, fmt.Errorf("ping: send %d to %s: %w", i, target, err)
		}
	}
	conn.SetReadDeadline(time.Now().Add(cfg.Wait))
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Now()) })
	err := <-recvDone
	stop()
	conn.SetReadDeadline(time.Time{})
	var ne net.Error
	if err != nil && !(errors.As(err, &ne) && ne.Timeout()) {
		return res, fmt.Errorf("ping: receive: %w", err)
	}
	if ctx.Err() != nil {
		return res, fmt.Errorf("ping: %w", ctx.Err())
	}
	return res, nil
}
