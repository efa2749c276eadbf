package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/splitstream/splitstream/bundle"
	"github.com/splitstream/splitstream/cloud"
	"github.com/splitstream/splitstream/codec"
	"github.com/splitstream/splitstream/edge"
	"github.com/splitstream/splitstream/models"
	"github.com/splitstream/splitstream/pipeline"
	"github.com/splitstream/splitstream/wire"
)

// shippedSplitBundle loads the first split bundle under models/zoo (the one
// the demo uses), or skips when the zoo has not been built.
func shippedSplitBundle(t *testing.T) *bundle.Bundle {
	t.Helper()
	manifests, _ := filepath.Glob("../../models/zoo/*/manifest.json")
	slices.Sort(manifests)
	for _, m := range manifests {
		b, err := bundle.Load(filepath.Dir(m))
		if err != nil {
			t.Fatal(err)
		}
		if b.Kind == bundle.KindSplit {
			return b
		}
	}
	t.Skip("no split bundle under models/zoo: run `make models` (or merge the train branch) first")
	return nil
}

// TestShippedReferenceParity checks the codec against the bundle's PyTorch
// reference vectors (symbols and rANS bytes exactly, from PyTorch's latent),
// and the native engine's encoder, trunk and heads against PyTorch's tensors.
func TestShippedReferenceParity(t *testing.T) {
	b := shippedSplitBundle(t)
	ref, err := b.Reference()
	if err != nil {
		t.Fatal(err)
	}
	l, err := b.Codec()
	if err != nil {
		t.Fatal(err)
	}
	s := b.Shape()
	get := func(im *bundle.RefImage, name string) []float32 {
		rt := im.Tensor(name)
		if rt == nil {
			t.Fatalf("reference %d has no %q", im.Index, name)
		}
		v, err := ref.Float32(rt)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	closeTo := func(what string, got, want []float32) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: %d values, reference %d", what, len(got), len(want))
		}
		var worst, scale float64
		for i := range got {
			worst = math.Max(worst, math.Abs(float64(got[i]-want[i])))
			scale = math.Max(scale, math.Abs(float64(want[i])))
		}
		if worst > 1e-3*math.Max(scale, 1) {
			t.Errorf("%s: max abs difference %.3g (reference scale %.3g)", what, worst, scale)
		}
	}
	open := func(file string) models.Engine {
		e, err := models.OpenFile(models.Native, b.Path(file), models.Options{Threads: 1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		return e
	}
	enc := open(b.Encoder.File)
	trunk := open(b.Cloud.Trunk.File)
	if len(ref.Images) == 0 {
		t.Fatal("the bundle ships no reference images")
	}
	for i := range ref.Images {
		im := &ref.Images[i]
		y := get(im, "latent")
		sym, err := l.Quantize(nil, s, y)
		if err != nil {
			t.Fatal(err)
		}
		want, err := ref.Int32(im.Tensor("symbols"))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(sym, want) {
			t.Errorf("image %d: symbols differ from PyTorch's", im.Index)
		}
		rans, err := l.EncodeSymbols(nil, s, sym)
		if err != nil {
			t.Fatal(err)
		}
		wantRans, err := ref.Bytes(im.Tensor("rans"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(rans, wantRans) {
			t.Errorf("image %d: rANS string (%d bytes) differs from CompressAI's (%d bytes)", im.Index, len(rans), len(wantRans))
		}
		closeTo(fmt.Sprintf("image %d latent_hat", im.Index), l.Dequantize(nil, s, sym), get(im, "latent_hat"))

		out, err := enc.Run(context.Background(), map[string]models.Tensor{b.Encoder.Input: {Shape: []int{1, b.Input.Channels, b.Input.Height, b.Input.Width}, Data: get(im, "input")}})
		if err != nil {
			t.Fatal(err)
		}
		closeTo(fmt.Sprintf("image %d encoder output", im.Index), out[b.Encoder.Output].Data, y)

		feats, err := trunk.Run(context.Background(), map[string]models.Tensor{b.Cloud.Trunk.Input: {Shape: []int{1, s.C, s.H, s.W}, Data: get(im, "latent_hat")}})
		if err != nil {
			t.Fatal(err)
		}
		f := feats[b.Cloud.Trunk.Output]
		closeTo(fmt.Sprintf("image %d features", im.Index), f.Data, get(im, "features"))
		for _, h := range b.Heads {
			head := open(h.File)
			outs, err := head.Run(context.Background(), map[string]models.Tensor{head.Inputs()[0].Name: {Shape: f.Shape, Data: get(im, "features")}})
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range h.Outputs {
				closeTo(fmt.Sprintf("image %d %s", im.Index, name), outs[name].Data, get(im, name))
			}
		}
	}
	t.Logf("%d reference images: symbols and rANS bytes exact; encoder, trunk and head outputs within tolerance", len(ref.Images))
}

// TestShippedTwoEdgesOverQUIC is the acceptance test: a cloud with the
// shipped bundle and the native engine, two edges at once on loopback, all
// three tasks; every reply equals running the encoder, the quantisation and
// the heads directly in process. A /metrics scrape during the run shows the
// stage histograms and request counters.
func TestShippedTwoEdgesOverQUIC(t *testing.T) {
	b := shippedSplitBundle(t)
	ts, err := b.TestSet()
	if err != nil {
		t.Fatal(err)
	}
	const perEdge = 6
	if len(ts.Images) < 2*perEdge {
		t.Fatalf("test set of %d images", len(ts.Images))
	}
	model, err := cloud.LoadModel(b, cloud.ModelOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer model.Close()
	enc, err := edge.NewEncoder(b, edge.EncoderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	srvTLS, cliTLS, err := pipeline.TLS()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := cloud.New([]*cloud.Model{model}, cloud.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, pc, srvTLS) }()
	defer func() { stop(); <-served }()
	metrics := httptest.NewServer(srv.Admin())
	defer metrics.Close()

	// In process: encoder, quantisation, dequantisation, trunk and heads.
	l := enc.Codec.(*codec.Learned)
	direct := func(file []byte) []wire.Result {
		img, err := edge.DecodeImage(file)
		if err != nil {
			t.Fatal(err)
		}
		y, _, err := enc.Latent(context.Background(), img)
		if err != nil {
			t.Fatal(err)
		}
		sym, err := l.Quantize(nil, b.Shape(), y)
		if err != nil {
			t.Fatal(err)
		}
		out, err := model.Run(context.Background(), l.Dequantize(nil, b.Shape(), sym), wire.AllTasks)
		if err != nil {
			t.Fatal(err)
		}
		return out.Results
	}
	files := make([][]byte, 2*perEdge)
	for i := range files {
		if files[i], err = os.ReadFile(filepath.Join(ts.Dir, ts.Images[i].File)); err != nil {
			t.Fatal(err)
		}
	}
	var scraped string
	var wg sync.WaitGroup
	for e := range 2 {
		client, err := edge.NewClient(pc.LocalAddr().String(), edge.ClientOptions{TLS: cliTLS, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		agent, err := edge.NewAgent(enc, client, edge.AgentOptions{Tasks: wire.AllTasks, Concurrency: 2, Timeout: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		items := make(chan edge.Item, perEdge)
		for i := range perEdge {
			k := e*perEdge + i
			items <- edge.Item{Index: k, Name: ts.Images[k].File, Data: files[k]}
		}
		close(items)
		wg.Add(1)
		go func() {
			defer wg.Done()
			agent.Run(context.Background(), items, func(r edge.Record) {
				if r.Status != "ok" {
					t.Errorf("edge %d %s: %s %s", e, r.Image, r.Status, r.Error)
					return
				}
				if want := direct(files[r.Index]); !reflect.DeepEqual(r.Reply.Results, want) {
					t.Errorf("edge %d %s: results over QUIC differ from the in-process run", e, r.Image)
				}
				if len(r.Reply.Results) != 3 {
					t.Errorf("edge %d %s: %d results", e, r.Image, len(r.Reply.Results))
				}
				if e == 0 && r.Index == perEdge-1 { // scrape while the other edge may still run
					resp, err := metrics.Client().Get(metrics.URL + "/metrics")
					if err == nil {
						body, _ := io.ReadAll(resp.Body)
						resp.Body.Close()
						scraped = string(body)
					}
				}
			})
		}()
	}
	wg.Wait()
	for _, want := range []string{
		`splitstream_cloud_stage_seconds_bucket{stage="decode"`,
		`splitstream_cloud_stage_seconds_bucket{stage="trunk"`,
		`splitstream_cloud_stage_seconds_bucket{stage="head:segment"`,
		`splitstream_cloud_requests_total{status="ok",task="detect"}`,
	} {
		if !strings.Contains(scraped, want) {
			t.Errorf("/metrics scrape during the run lacks %s", want)
		}
	}
}
