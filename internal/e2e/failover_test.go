package e2e

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/splitstream/splitstream/bundle/bundletest"
	"github.com/splitstream/splitstream/cloud"
	"github.com/splitstream/splitstream/edge"
)

// replica is one more cloud server for the fixture's bundle, on its own
// loopback address, with its own engines (whose Runs count its work).
type replica struct {
	addr    string
	engines *bundletest.Engines
	server  *cloud.Server
	pc      net.PacketConn
	stop    context.CancelFunc
	done    chan struct{}
}

func (f *fixture) replica(t *testing.T, ip string, o cloud.Options) *replica {
	t.Helper()
	r := &replica{engines: &bundletest.Engines{Delay: f.engines.Delay}, done: make(chan struct{})}
	m, err := cloud.LoadModel(f.b, cloud.ModelOptions{Open: r.engines.Open})
	if err != nil {
		t.Fatal(err)
	}
	o.Logger = quiet
	if r.server, err = cloud.New([]*cloud.Model{m}, o); err != nil {
		t.Fatal(err)
	}
	if r.pc, err = net.ListenPacket("udp", ip+":0"); err != nil {
		t.Skipf("cannot listen on %s: %v", ip, err)
	}
	r.addr = r.pc.LocalAddr().String()
	ctx, cancel := context.WithCancel(context.Background())
	r.stop = cancel
	go func() {
		defer close(r.done)
		r.server.Serve(ctx, r.pc, f.srvTLS)
		r.pc.Close()
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
		m.Close()
	})
	return r
}

// crash stops the replica as a killed process would: its socket closes
// and nothing is said to its clients.
func (r *replica) crash() {
	r.pc.Close()
	r.stop()
}

// stream sends n images through an agent with a client for servers, calls
// at(k) once k records have come, and checks that every image was answered
// ok, exactly once. It returns the client's counters.
func (f *fixture) stream(t *testing.T, servers string, n, k int, at func()) edge.ConnStats {
	t.Helper()
	client, err := edge.NewClient(servers, edge.ClientOptions{TLS: f.client, Logger: quiet, MinBackoff: 20 * time.Millisecond,
		MaxBackoff: 200 * time.Millisecond, DialTimeout: time.Second, IdleTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	agent, err := edge.NewAgent(f.newEncoder(t), client, edge.AgentOptions{Concurrency: 4, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	items := make(chan edge.Item)
	go func() {
		for i := range n {
			items <- edge.Item{Index: i, Name: fmt.Sprintf("img%d", i), Data: pngImage(t, uint64(i))}
		}
		close(items)
	}()
	var mu sync.Mutex
	seen, ids := map[int]int{}, map[uint64]int{}
	var failed []string
	var once sync.Once
	if err := agent.Run(context.Background(), items, func(r edge.Record) {
		mu.Lock()
		seen[r.Index]++
		if r.Reply != nil {
			ids[r.Reply.RequestID]++
		}
		if r.Status != "ok" {
			failed = append(failed, r.Image+": "+r.Error)
		}
		done := len(seen)
		mu.Unlock()
		if done == k {
			once.Do(func() { go at() })
		}
	}); err != nil {
		t.Fatal(err)
	}
	for _, e := range failed {
		t.Errorf("failed: %s", e)
	}
	for i := range n {
		if seen[i] != 1 {
			t.Errorf("image %d has %d records", i, seen[i])
		}
	}
	for id, c := range ids {
		if c != 1 {
			t.Errorf("request %d answered %d times", id, c)
		}
	}
	return client.Stats()
}

// TestEdgeFailsOverToTheNextServer runs an edge given two servers while the
// first stops mid-run, by crashing (its socket closes: the edge finds out
// from its idle timeout) or by draining (SIGTERM's path: it keeps serving
// for its drain delay, then closes with GoingAway): the edge moves to the
// second and every image is answered ok, exactly once.
func TestEdgeFailsOverToTheNextServer(t *testing.T) {
	for _, mode := range []string{"crash", "drain"} {
		t.Run(mode, func(t *testing.T) {
			f := newFixture(t, fixtureOptions{delay: 2 * time.Millisecond})
			a := f.replica(t, "127.0.0.1", cloud.Options{DrainDelay: 200 * time.Millisecond})
			b := f.replica(t, "127.0.0.2", cloud.Options{})
			st := f.stream(t, a.addr+","+b.addr, 300, 80, func() {
				if mode == "crash" {
					a.crash()
				} else {
					a.stop()
				}
			})
			<-a.done
			aRuns := a.engines.Runs.Load()
			t.Logf("%s: %+v; graph runs: first server %d, second %d", mode, st, aRuns, b.engines.Runs.Load())
			if aRuns == 0 || b.engines.Runs.Load() == 0 {
				t.Errorf("graph runs: first server %d, second %d: both should have served", aRuns, b.engines.Runs.Load())
			}
			if mode == "drain" && st.GoingAway == 0 {
				t.Errorf("stats %+v: the draining server's connection did not close with GoingAway", st)
			}
		})
	}
}
