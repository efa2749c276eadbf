package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/splitstream/splitstream/bundle"
	"github.com/splitstream/splitstream/bundle/bundletest"
	"github.com/splitstream/splitstream/cloud"
	"github.com/splitstream/splitstream/edge"
	"github.com/splitstream/splitstream/edge/learn"
	"github.com/splitstream/splitstream/edge/policy"
	"github.com/splitstream/splitstream/models"
	"github.com/splitstream/splitstream/pipeline"
	"github.com/splitstream/splitstream/wire"
)

// slowEngine delays every run of a graph by the current value of delay.
type slowEngine struct {
	models.Engine
	delay *atomic.Int64
}

func (e slowEngine) Run(ctx context.Context, in map[string]models.Tensor) (map[string]models.Tensor, error) {
	if d := time.Duration(e.delay.Load()); d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return e.Engine.Run(ctx, in)
}

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestAdaptiveAgent runs the edge agent with the adaptive policy over the
// shipped bundles (the teacher's image at PNG, JPEG and WebP; the learned
// codec of the three rate points) against a real cloud on loopback. Every
// image is answered and its record names its point; then the cloud of the
// point the policy sits on is made slower than the SLO, and the agent
// switches away from it: the switch is logged at debug level, and the
// metrics gauge names the new point.
func TestAdaptiveAgent(t *testing.T) {
	if testing.Short() {
		t.Skip("calibrates ten points on the shipped bundles")
	}
	dirs, _ := filepath.Glob("../../models/zoo/*/manifest.json")
	var bundles []*bundle.Bundle
	for _, m := range dirs {
		b, err := bundle.Load(filepath.Dir(m))
		if err != nil {
			t.Fatal(err)
		}
		bundles = append(bundles, b)
	}
	if len(bundles) < 2 || !slices.ContainsFunc(bundles, func(b *bundle.Bundle) bool { return b.Kind == bundle.KindFull }) {
		t.Skip("the shipped bundles (a full one and split ones) are not under models/zoo")
	}
	delays := map[*bundle.Bundle]*atomic.Int64{}
	var ms []*cloud.Model
	for _, b := range bundles {
		d := &atomic.Int64{}
		delays[b] = d
		m, err := cloud.LoadModel(b, cloud.ModelOptions{Open: func(path string) (models.Engine, error) {
			e, err := models.OpenFile(models.Native, path, models.Options{})
			return slowEngine{e, d}, err
		}})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		ms = append(ms, m)
	}
	srvTLS, cliTLS, err := pipeline.TLS()
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stop, err := pipeline.Serve(context.Background(), ms, pc, srvTLS, cloud.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer stop()

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0") // a free port for the metrics
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr := ln.Addr().String()
	ln.Close()
	metrics, err := edge.ServeMetrics(ctx, metricsAddr)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	const slo = 300 * time.Millisecond
	s := edge.Setup{
		Server: pc.LocalAddr().String(),
		Client: edge.ClientOptions{TLS: cliTLS, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))},
		Agent:  edge.AgentOptions{Tasks: wire.Tasks(0).With(wire.Classify), Concurrency: 1, Timeout: 20 * time.Second},
		Policy: edge.PolicyOptions{Adaptive: true, Bundles: bundles, Calibrate: 4, Policy: policy.Options{SLO: slo}},
	}
	agent, closeAgent, err := s.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer closeAgent()
	ts, err := bundles[0].TestSet()
	if err != nil {
		t.Fatal(err)
	}
	run := func(from, n int) []edge.Record {
		var inputs []string
		for i := from; i < from+n; i++ {
			inputs = append(inputs, filepath.Join(ts.Dir, ts.Images[i].File))
		}
		var out, summary bytes.Buffer
		if err := agent.RunReport(ctx, inputs, nil, edge.Report{Records: &out, Summary: &summary, Metrics: metrics}); err != nil {
			t.Fatalf("%v\n%s", err, summary.String())
		}
		t.Logf("summary:\n%s", summary.String())
		var recs []edge.Record
		sc := bufio.NewScanner(&out)
		for sc.Scan() {
			var r edge.Record
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatal(err)
			}
			recs = append(recs, r)
		}
		if len(recs) != n {
			t.Fatalf("%d records for %d images", len(recs), n)
		}
		names := map[string]bool{}
		for _, p := range mustAdaptive(t, agent).Points {
			names[p.Name] = true
		}
		for _, r := range recs {
			if r.Status != "ok" || r.Results == nil || len(r.Results.Classify) == 0 {
				t.Errorf("%s: %s %s: not answered", r.Image, r.Status, r.Error)
			}
			if !names[r.Point] {
				t.Errorf("%s: point %q is none of the agent's", r.Image, r.Point)
			}
		}
		return recs
	}

	const n = 12
	before := run(0, n)
	current := before[n-1].Point
	var slowed *bundle.Bundle
	for _, p := range mustAdaptive(t, agent).Points {
		if p.Name == current {
			slowed = p.Bundle
		}
	}
	delays[slowed].Store(int64(slo)) // each graph run: trunk and head take twice the SLO
	t.Logf("the policy sat on %s; the cloud of bundle %s is now slower than the SLO", current, slowed.Name)
	after := run(n, n)
	var points []string
	for _, r := range after {
		points = append(points, r.Point)
	}
	t.Logf("points after the slowdown: %v", points)
	last := after[n-1].Point
	if last == current {
		t.Fatalf("the agent still sends with %s after the slowdown: %v", current, points)
	}
	if want := "to=" + last; !strings.Contains(logs.String(), "adaptive: operating point") || !strings.Contains(logs.String(), want) {
		t.Errorf("no switch to %s logged:\n%s", last, logs.String())
	}

	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var ones []string
	for line := range strings.Lines(string(body)) {
		if name, ok := strings.CutPrefix(line, `splitstream_edge_operating_point{point="`); ok {
			if strings.HasSuffix(strings.TrimSpace(line), "} 1") {
				ones = append(ones, name[:strings.IndexByte(name, '"')])
			}
		}
	}
	if len(ones) != 1 || ones[0] != last {
		t.Errorf("the gauge is 1 for %v, want only %s:\n%s", ones, last, body)
	}
}

func mustAdaptive(t *testing.T, a *edge.Agent) edge.AdaptiveStats {
	st, ok := a.Adaptive()
	if !ok {
		t.Fatal("the agent is not adaptive")
	}
	return st
}

// TestAdaptiveAgentGoesLocalWhileCloudIsDown: an adaptive edge with a local
// classifier (--learn, --fallback local) sends with the learned codec while
// the cloud answers; when the cloud goes away, the failed requests mark the
// link down and the policy moves to the local point, so that every frame
// is still answered, most of them at "local" without a request.
func TestAdaptiveAgentGoesLocalWhileCloudIsDown(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	set := t.TempDir() // a labelled set of the test bundle's images to calibrate on
	var labels strings.Builder
	labels.WriteString(`{"labels": ["red", "green", "blue"], "images": [`)
	for i := range 4 {
		name := fmt.Sprintf("%d.png", i)
		if err := os.WriteFile(filepath.Join(set, name), pngImage(t, uint64(100+i)), 0o644); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&labels, `%s{"file": %q, "label": %d}`, map[bool]string{true: ", "}[i > 0], name, i%3)
	}
	labels.WriteString("]}")
	if err := os.WriteFile(filepath.Join(set, "labels.json"), []byte(labels.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	engines := &bundletest.Engines{}
	s := edge.Setup{
		Server:  f.addr,
		Encoder: edge.EncoderOptions{Open: engines.Open},
		Client:  edge.ClientOptions{TLS: f.client, Logger: quiet, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond},
		Agent:   edge.AgentOptions{Concurrency: 1, Timeout: 500 * time.Millisecond, Fallback: true},
		Local:   edge.LocalOptions{Dir: t.TempDir(), Learn: learn.Config{MinScore: 1e-6}},
		Policy:  edge.PolicyOptions{Adaptive: true, Bundles: []*bundle.Bundle{f.b}, TestSet: set, Policy: policy.Options{SLO: time.Second}},
	}
	agent, closeAgent, err := s.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer closeAgent()
	var recs []edge.Record
	stream := func(from, n int) {
		items := make(chan edge.Item, n)
		for i := from; i < from+n; i++ {
			items <- edge.Item{Index: i, Name: fmt.Sprintf("img%d", i), Data: pngImage(t, uint64(i))}
		}
		close(items)
		if err := agent.Run(context.Background(), items, func(r edge.Record) { recs = append(recs, r) }); err != nil {
			t.Fatal(err)
		}
	}
	stream(0, 10)
	f.shutdown(t)
	stream(10, 20)
	count := map[string]int{}
	for _, r := range recs {
		if r.Status != "ok" || r.Results == nil || len(r.Results.Classify) == 0 {
			t.Errorf("%s at %s: %s %s: no classification", r.Image, r.Point, r.Status, r.Error)
		}
		if r.Index >= 10 && r.Source != "local" {
			t.Errorf("%s at %s answered by the cloud after it went away", r.Image, r.Point)
		}
		if r.Index < 10 && r.Point != "learned-testbundle" {
			t.Errorf("%s at %s while the cloud answers", r.Image, r.Point)
		}
		if r.Index >= 10 {
			count[r.Point]++
		}
	}
	t.Logf("points while the cloud was down: %v", count)
	if len(recs) != 30 || count[edge.LocalPointName] < 10 {
		t.Errorf("%d records, %d of the last 20 at the local point; want 30, at least 10", len(recs), count[edge.LocalPointName])
	}
}
