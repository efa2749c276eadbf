package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/splitstream/splitstream/bundle"
	"github.com/splitstream/splitstream/bundle/bundletest"
	"github.com/splitstream/splitstream/cloud"
	"github.com/splitstream/splitstream/edge"
	"github.com/splitstream/splitstream/internal/certs"
)

// cloudPlan is what a cloud helper process serves; it travels as JSON in
// an environment variable.
type cloudPlan struct {
	Addr, Dir     string
	Cert, Key, CA []byte
	TicketKeys    string // contents of a ticket-key file
	Delay         time.Duration
}

// TestCloudHelper is a cloud process for TestCloudKilledTwiceLosesNothing:
// it serves the test bundle at Addr until it is killed.
func TestCloudHelper(t *testing.T) {
	env := os.Getenv("SPLITSTREAM_CLOUD_PLAN")
	if env == "" {
		t.Skip("run by TestCloudKilledTwiceLosesNothing")
	}
	var p cloudPlan
	if err := json.Unmarshal([]byte(env), &p); err != nil {
		t.Fatal(err)
	}
	b, err := bundle.Load(p.Dir)
	if err != nil {
		t.Fatal(err)
	}
	engines := &bundletest.Engines{Delay: p.Delay}
	m, err := cloud.LoadModel(b, cloud.ModelOptions{Open: engines.Open})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := cloud.ParseTicketKeys([]byte(p.TicketKeys))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := cloud.New([]*cloud.Model{m}, cloud.Options{Logger: quiet, TicketKeys: keys})
	if err != nil {
		t.Fatal(err)
	}
	tlsConf, err := certs.ServerConfig(p.Cert, p.Key, p.CA)
	if err != nil {
		t.Fatal(err)
	}
	var pc net.PacketConn
	for try := 0; ; try++ { // the killed process's port may take a moment
		if pc, err = net.ListenPacket("udp", p.Addr); err == nil || try == 50 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("serving")
	srv.Serve(context.Background(), pc, tlsConf)
}

// TestCloudKilledTwiceLosesNothing runs an edge over 400 images while the
// cloud process is killed with SIGKILL and restarted twice (each time after
// 60 more images were answered): every image ends ok, exactly once.
func TestCloudKilledTwiceLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills cloud processes")
	}
	dir := t.TempDir()
	if err := bundletest.Write(dir, "testbundle"); err != nil {
		t.Fatal(err)
	}
	b, err := bundle.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	set, err := certs.New(certs.DefaultHosts)
	if err != nil {
		t.Fatal(err)
	}
	_, cliTLS, err := set.Configs("localhost", true)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	plan, _ := json.Marshal(cloudPlan{Addr: addr, Dir: dir, Cert: set.Server, Key: set.ServerKey, CA: set.CA,
		TicketKeys: "# test\n" + fmt.Sprintf("%064x\n", 12345), Delay: 5 * time.Millisecond})
	start := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCloudHelper$")
		cmd.Env = append(os.Environ(), "SPLITSTREAM_CLOUD_PLAN="+string(plan))
		out, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 8)
		if _, err := out.Read(buf); err != nil { // "serving"
			t.Fatalf("cloud helper: %v", err)
		}
		return cmd
	}
	cloudProc := start()
	defer func() { cloudProc.Process.Kill(); cloudProc.Wait() }()

	engines := &bundletest.Engines{}
	enc, err := edge.NewEncoder(b, edge.EncoderOptions{Open: engines.Open})
	if err != nil {
		t.Fatal(err)
	}
	client, err := edge.NewClient(addr, edge.ClientOptions{TLS: cliTLS, Logger: quiet, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	agent, err := edge.NewAgent(enc, client, edge.AgentOptions{Concurrency: 4, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	const n = 400
	items := make(chan edge.Item)
	go func() {
		for i := range n {
			items <- edge.Item{Index: i, Name: fmt.Sprintf("img%d", i), Data: pngImage(t, uint64(i))}
		}
		close(items)
	}()
	var mu sync.Mutex
	seen := map[int]int{}
	var failed []string
	kills := make(chan struct{})
	go func() {
		defer close(kills)
		last := 0
		for k := range 2 {
			// Kill once the edge has made progress since the last restart.
			var done int
			for done < last+60 {
				time.Sleep(20 * time.Millisecond)
				mu.Lock()
				done = len(seen)
				mu.Unlock()
			}
			last = done
			cloudProc.Process.Signal(syscall.SIGKILL)
			cloudProc.Wait()
			t.Logf("kill %d after %d images", k+1, done)
			cloudProc = start()
		}
	}()
	if err := agent.Run(context.Background(), items, func(r edge.Record) {
		mu.Lock()
		defer mu.Unlock()
		seen[r.Index]++
		if r.Status != "ok" {
			failed = append(failed, r.Image+": "+r.Error)
		}
	}); err != nil {
		t.Fatal(err)
	}
	<-kills
	st := client.Stats()
	t.Logf("%d records; connections %d, 0-RTT resumed %d, resent after a broken connection %d", len(seen), st.Connects, st.Resumed0RTT, st.Resent)
	for _, f := range failed {
		t.Errorf("failed: %s", f)
	}
	for i := range n {
		if seen[i] != 1 {
			t.Errorf("image %d has %d records", i, seen[i])
		}
	}
	if st.Connects < 3 {
		t.Errorf("%d connections: the cloud was not restarted under the run", st.Connects)
	}
}
