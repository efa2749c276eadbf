package link

import (
	"context"
	"encoding/binary"
	"net"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/splitstream/splitstream/bench/link/probe"
)

// BenchmarkReleaseLateness measures how late datagrams arrive after a 5 ms
// one-way delay through the relay: arrival time at the receiving socket
// minus send time minus 5 ms, so it includes two loopback sends and
// receives besides the relay's own timing. One datagram per iteration,
// sent every 2 ms. The sub-benchmarks compare the release strategies:
// Go's timer alone, timer then spinning, and the default (timer, then
// nanosleep, then spinning). relay-late-mean-µs is the relay's own count
// (Stats), and cpu-µs/op the process's CPU time per datagram.
func BenchmarkReleaseLateness(b *testing.B) {
	modes := []struct {
		name         string
		coarse, fine time.Duration
		useFineSleep bool
	}{
		{"timer", 0, 0, false},
		{"timer+spin", coarseSlack, 0, false},
		{"default", coarseSlack, fineSlack, true},
	}
	release, err := probe.Exclusive(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	defer release()
	watch := probe.WatchCPU()
	defer func() {
		if busy, figures := watch.Busy(); busy {
			b.Logf("busy machine (%s): expect outliers", figures)
		}
	}()
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			defer func(c, f time.Duration, s func(time.Duration)) { coarseSlack, fineSlack, fineSleep = c, f, s }(coarseSlack, fineSlack, fineSleep)
			coarseSlack, fineSlack = m.coarse, m.fine
			if !m.useFineSleep {
				fineSleep = nil
			}
			const delay = 5 * time.Millisecond
			dst, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				b.Fatal(err)
			}
			defer dst.Close()
			relay, err := NewRelay(context.Background(), "127.0.0.1:0", dst.LocalAddr().String(), Config{Up: Direction{Delay: delay}}, 1)
			if err != nil {
				b.Fatal(err)
			}
			defer relay.Close()
			src, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				b.Fatal(err)
			}
			defer src.Close()

			start := time.Now()
			late := make([]time.Duration, 0, b.N)
			recvDone := make(chan struct{})
			go func() {
				defer close(recvDone)
				buf := make([]byte, 64)
				for len(late) < b.N {
					n, err := dst.Read(buf)
					if err != nil {
						return
					}
					if n == 8 {
						sent := time.Duration(binary.BigEndian.Uint64(buf))
						late = append(late, time.Since(start)-sent-delay)
					}
				}
			}()
			msg := make([]byte, 8)
			cpu0 := cpuTime()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				binary.BigEndian.PutUint64(msg, uint64(time.Since(start)))
				src.WriteTo(msg, relay.Addr())
				time.Sleep(2 * time.Millisecond)
			}
			select {
			case <-recvDone:
			case <-time.After(time.Second):
				dst.Close()
				<-recvDone
			}
			b.StopTimer()
			cpu := cpuTime() - cpu0
			if len(late) == 0 {
				b.Fatal("nothing arrived")
			}
			slices.Sort(late)
			q := func(f float64) float64 { return float64(late[int(f*float64(len(late)-1))].Microseconds()) }
			b.ReportMetric(q(0.5), "late-p50-µs")
			b.ReportMetric(q(0.99), "late-p99-µs")
			b.ReportMetric(float64(relay.Stats().Up.MeanLate().Microseconds()), "relay-late-mean-µs")
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// cpuTime is the user and system CPU time of the process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
