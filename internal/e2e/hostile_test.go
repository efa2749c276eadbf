package e2e

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/splitstream/splitstream/cloud"
	"github.com/splitstream/splitstream/codec"
	"github.com/splitstream/splitstream/internal/certs"
	"github.com/splitstream/splitstream/wire"
)

// hostileMemoryBound is the stated bound on the Go memory in use (heap and
// stacks) of a cloud under the attack of TestHostileClientsBoundedMemory,
// with default limits: 1024 connections held, 1024 streams stalled.
const hostileMemoryBound = 256 << 20

// hostilePlan is what the attacker process does; it travels as JSON in an
// environment variable.
type hostilePlan struct {
	Server        string   // the cloud's address
	Addrs         []string // local IPs to dial from, ConnsPerAddr from each
	ConnsPerAddr  int
	StreamConns   int // the first StreamConns connections open Streams streams each
	Streams       int
	Bundle        string // hex hash of the served bundle
	C, H, W       uint16
	Limit         uint32 // the payload limit for the learned codec
	CA, Cert, Key []byte
}

// TestHostileHelper is the attacker of TestHostileClientsBoundedMemory, run
// in its own process (so that its memory is not the cloud's). It dials
// connections and opens streams that stall: headers claiming 16 MiB,
// headers claiming the bundle's limit followed by 1 KiB, and streams that
// send nothing. It prints "held N refused M" and holds them until stdin
// closes.
func TestHostileHelper(t *testing.T) {
	env := os.Getenv("SPLITSTREAM_HOSTILE_PLAN")
	if env == "" {
		t.Skip("run by TestHostileClientsBoundedMemory")
	}
	var p hostilePlan
	if err := json.Unmarshal([]byte(env), &p); err != nil {
		t.Fatal(err)
	}
	tlsConf, err := certs.ClientConfig(p.CA, p.Cert, p.Key, "localhost")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := net.ResolveUDPAddr("udp", p.Server)
	if err != nil {
		t.Fatal(err)
	}
	var hash [wire.HashSize]byte
	hex.Decode(hash[:], []byte(p.Bundle))
	var held, refused atomic.Int64
	var conns sync.Map
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	n := 0
	for _, a := range p.Addrs {
		pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(a)})
		if err != nil {
			t.Fatal(err)
		}
		tr := &quic.Transport{Conn: pc}
		for range p.ConnsPerAddr {
			i := n
			n++
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				conn, err := tr.Dial(ctx, srv, tlsConf, &quic.Config{MaxIdleTimeout: time.Minute, KeepAlivePeriod: 5 * time.Second})
				if err != nil {
					refused.Add(1)
					return
				}
				held.Add(1)
				conns.Store(i, conn)
				if i >= p.StreamConns {
					return
				}
				for s := range p.Streams {
					str, err := conn.OpenStream()
					if err != nil {
						return
					}
					h := wire.Header{Codec: 1, Tasks: wire.AllTasks, Channels: p.C, Height: p.H, Width: p.W, RequestID: uint64(s), Bundle: hash}
					switch s % 3 {
					case 0: // claims 16 MiB, then stalls
						h.PayloadLen = 16 << 20
						str.Write(wire.AppendHeader(nil, &h))
					case 1: // claims the limit, sends 1 KiB, stalls
						h.PayloadLen = p.Limit
						str.Write(append(wire.AppendHeader(nil, &h), make([]byte, 1024)...))
					case 2: // sends nothing
						str.Write(nil)
					}
				}
			}()
		}
	}
	wg.Wait()
	fmt.Printf("held %d refused %d\n", held.Load(), refused.Load())
	bufio.NewReader(os.Stdin).ReadString('\n') // hold until the test closes stdin
}

func goMemory() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse + ms.StackInuse
}

// TestHostileClientsBoundedMemory runs an attacker process against a cloud
// with default limits: 1100 connections from 11 addresses (1024 may be
// held), eight of them with 128 stalled streams each (a third claiming
// 16 MiB, a third claiming the bundle's limit with 1 KiB sent, a third
// silent). The cloud's memory stays under hostileMemoryBound, and an edge
// that connected before the attack is served throughout.
func TestHostileClientsBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns an attacker process with 1100 connections")
	}
	// Timeouts longer than the test, so every hostile stream stays held.
	f := newFixture(t, fixtureOptions{server: cloud.Options{HeaderTimeout: time.Minute, ReadTimeout: time.Minute}})
	enc := f.newEncoder(t)
	client := f.newClient(t)
	h, payload := f.request(t, enc, pngImage(t, 11), 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if r, err := client.Do(ctx, h, payload); err != nil || r.Status != wire.StatusOK {
		t.Fatalf("before the attack: %v %+v", err, r)
	}
	runtime.GC()
	base := goMemory()

	s := f.b.Shape()
	plan := hostilePlan{Server: f.addr, ConnsPerAddr: 100, StreamConns: 8, Streams: 128,
		Bundle: hex.EncodeToString(f.b.ID[:]), C: uint16(s.C), H: uint16(s.H), W: uint16(s.W),
		Limit: cloud.PayloadLimit(codec.IDLearned, s, wire.MaxPayload), CA: f.certs.CA, Cert: f.certs.Client, Key: f.certs.ClientKey}
	for i := 10; i < 21; i++ {
		plan.Addrs = append(plan.Addrs, "127.0.0."+strconv.Itoa(i))
	}
	pj, _ := json.Marshal(plan)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHostileHelper$", "-test.v")
	cmd.Env = append(os.Environ(), "SPLITSTREAM_HOSTILE_PLAN="+string(pj))
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()

	var peak atomic.Uint64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if m := goMemory(); m > peak.Load() {
				peak.Store(m)
			}
			select {
			case <-stopSampling:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	// The edge is served while the attack builds up and holds.
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "held ") {
				lines <- sc.Text()
			}
		}
		close(lines)
	}()
	var served, failed int
	var report string
loop:
	for {
		select {
		case report = <-lines:
			break loop
		case <-ctx.Done():
			t.Fatal("attacker did not finish dialling")
		default:
		}
		h.RequestID++
		r, err := client.Do(ctx, h, payload)
		if err != nil || r.Status != wire.StatusOK {
			failed++
			t.Errorf("during the attack: %v %+v", err, r)
			continue
		}
		served++
	}
	for range 50 { // and once it holds everything
		h.RequestID++
		r, err := client.Do(ctx, h, payload)
		if err != nil || r.Status != wire.StatusOK {
			failed++
			t.Errorf("under the attack: %v %+v", err, r)
			continue
		}
		served++
	}
	close(stopSampling)
	<-sampled
	var held, refused int
	fmt.Sscanf(report, "held %d refused %d", &held, &refused)
	t.Logf("attacker: %s; edge: %d served, %d failed; cloud Go memory %.1f MiB before, peak %.1f MiB (bound %d MiB)",
		report, served, failed, float64(base)/(1<<20), float64(peak.Load())/(1<<20), hostileMemoryBound>>20)
	if held > 1024 || refused < 1100-1024 {
		t.Errorf("held %d, refused %d: want at most 1024 connections held (MaxConns)", held, refused)
	}
	if peak.Load() > hostileMemoryBound {
		t.Errorf("peak %d bytes over the bound %d", peak.Load(), hostileMemoryBound)
	}
}
