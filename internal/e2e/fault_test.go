package e2e

import (
	"context"
	"crypto/tls"
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
	"github.com/splitstream/splitstream/edge/learn"
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
// cloudProcess is the test bundle served by cloud helper processes on one
// loopback address, started (and restarted) by start.
type cloudProcess struct {
	b      *bundle.Bundle
	addr   string
	cliTLS *tls.Config
	start  func() *exec.Cmd
}

func newCloudProcess(t *testing.T) *cloudProcess {
	t.Helper()
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
	return &cloudProcess{b: b, addr: addr, cliTLS: cliTLS, start: start}
}

func TestCloudKilledTwiceLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills cloud processes")
	}
	cp := newCloudProcess(t)
	b, addr, cliTLS, start := cp.b, cp.addr, cp.cliTLS, cp.start
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

// TestLocalFallbackWhileCloudIsDown: an edge learns a local classifier from
// the cloud's replies, the cloud is killed, and every frame still gets a
// classification, from the local model, until the cloud is back.
func TestLocalFallbackWhileCloudIsDown(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills cloud processes")
	}
	cp := newCloudProcess(t)
	cloudProc := cp.start()
	defer func() { cloudProc.Process.Kill(); cloudProc.Wait() }()
	engines := &bundletest.Engines{}
	enc, err := edge.NewEncoder(cp.b, edge.EncoderOptions{Open: engines.Open})
	if err != nil {
		t.Fatal(err)
	}
	client, err := edge.NewClient(cp.addr, edge.ClientOptions{TLS: cp.cliTLS, Logger: quiet, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	modelDir := t.TempDir()
	local, err := edge.OpenLocal(cp.b, edge.LocalOptions{Dir: modelDir, Learn: learn.Config{MinScore: 1e-6, EpochEvery: 20}, SaveEvery: 10})
	if err != nil {
		t.Fatal(err)
	}
	agent, err := edge.NewAgent(enc, client, edge.AgentOptions{Concurrency: 2, Timeout: 600 * time.Millisecond, Local: local, Fallback: true})
	if err != nil {
		t.Fatal(err)
	}
	var sum edge.Summary
	stream := func(from, n int) {
		items := make(chan edge.Item)
		go func() {
			for i := from; i < from+n; i++ {
				items <- edge.Item{Index: i, Name: fmt.Sprintf("img%d", i), Data: pngImage(t, uint64(i))}
			}
			close(items)
		}()
		if err := agent.Run(context.Background(), items, func(r edge.Record) {
			sum.Add(r)
			if r.Status != "ok" || r.Results == nil || len(r.Results.Classify) == 0 {
				t.Errorf("%s: %s %s, no classification", r.Image, r.Status, r.Error)
			}
			if r.Source == "local" && len(r.Unserved) != 2 {
				t.Errorf("%s answered locally, unserved %v; want detect and segment", r.Image, r.Unserved)
			}
		}); err != nil {
			t.Fatal(err)
		}
	}
	stream(0, 60) // the cloud answers, the edge learns
	if local.Info().Samples == 0 {
		t.Fatal("the local model learned nothing from the cloud's replies")
	}
	cloudProc.Process.Signal(syscall.SIGKILL)
	cloudProc.Wait()
	stream(60, 30) // the cloud is down
	localAnswers := sum.Local
	cloudProc = cp.start()
	stream(90, 30) // the cloud is back
	t.Logf("%d images, %d answered locally, %d errors; local model: %d samples", sum.Count, sum.Local, sum.Errors, local.Info().Samples)
	if sum.Count != 120 || sum.Errors != 0 {
		t.Errorf("%d records, %d errors; want 120, 0", sum.Count, sum.Errors)
	}
	if localAnswers < 30 {
		t.Errorf("%d frames answered locally while the cloud was down, want 30", localAnswers)
	}
	if sum.Local-localAnswers == 30 {
		t.Error("no frame reached the cloud after its restart")
	}
	if err := local.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := learn.Load(modelDir, cp.b.ID, cp.b.Shape(), learn.Config{}); err != nil {
		t.Errorf("the saved model does not load: %v", err)
	}
}
