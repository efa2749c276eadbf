package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/splitstream/splitstream/bundle"
	"github.com/splitstream/splitstream/bundle/bundletest"
	"github.com/splitstream/splitstream/cloud"
	"github.com/splitstream/splitstream/codec"
	"github.com/splitstream/splitstream/edge"
	"github.com/splitstream/splitstream/internal/certs"
	"github.com/splitstream/splitstream/wire"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// fixture is a test bundle with its cloud model, served on loopback.
type fixture struct {
	b       *bundle.Bundle
	engines *bundletest.Engines
	model   *cloud.Model
	server  *cloud.Server
	addr    string
	client  *tls.Config
	srvTLS  *tls.Config
	certs   *certs.Set
	stop    context.CancelFunc
	done    chan error
}

type fixtureOptions struct {
	delay  time.Duration
	model  cloud.ModelOptions
	server cloud.Options
}

func newFixture(t *testing.T, o fixtureOptions) *fixture {
	t.Helper()
	dir := t.TempDir()
	if err := bundletest.Write(dir, "testbundle"); err != nil {
		t.Fatal(err)
	}
	b, err := bundle.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{b: b, engines: &bundletest.Engines{Delay: o.delay}}
	o.model.Open = f.engines.Open
	if f.model, err = cloud.LoadModel(b, o.model); err != nil {
		t.Fatal(err)
	}
	set, err := certs.New(certs.DefaultHosts)
	if err != nil {
		t.Fatal(err)
	}
	srvTLS, cliTLS, err := set.Configs("localhost", true)
	if err != nil {
		t.Fatal(err)
	}
	f.client, f.srvTLS, f.certs = cliTLS, srvTLS, set
	o.server.Logger = quiet
	if f.server, err = cloud.New([]*cloud.Model{f.model}, o.server); err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = pc.LocalAddr().String()
	ctx, cancel := context.WithCancel(context.Background())
	f.stop, f.done = cancel, make(chan error, 1)
	go func() {
		err := f.server.Serve(ctx, pc, srvTLS)
		pc.Close()
		f.done <- err
	}()
	t.Cleanup(func() {
		f.shutdown(t)
		f.model.Close()
	})
	return f
}

func (f *fixture) shutdown(t *testing.T) {
	if f.stop == nil {
		return
	}
	f.stop()
	select {
	case err := <-f.done:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Error("server did not shut down")
	}
	f.stop = nil
}

func (f *fixture) newClient(t *testing.T) *edge.Client {
	c, err := edge.NewClient(f.addr, edge.ClientOptions{TLS: f.client, Logger: quiet, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (f *fixture) newEncoder(t *testing.T) *edge.Encoder {
	enc, err := edge.NewEncoder(f.b, edge.EncoderOptions{Open: f.engines.Open})
	if err != nil {
		t.Fatal(err)
	}
	return enc
}

// pngImage draws a 16 x 16 image of coloured blocks.
func pngImage(t testing.TB, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 2))
	img := image.NewRGBA(image.Rect(0, 0, bundletest.Size, bundletest.Size))
	for by := 0; by < bundletest.Size; by += 4 {
		for bx := 0; bx < bundletest.Size; bx += 4 {
			c := color.RGBA{uint8(r.IntN(256)), uint8(r.IntN(256)), uint8(r.IntN(256)), 255}
			for y := by; y < by+4; y++ {
				for x := bx; x < bx+4; x++ {
					img.Set(x, y, c)
				}
			}
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// request builds a valid request for one image.
func (f *fixture) request(t *testing.T, enc *edge.Encoder, file []byte, id uint64) (wire.Header, []byte) {
	payload, _, err := enc.Encode(context.Background(), file)
	if err != nil {
		t.Fatal(err)
	}
	s := f.b.Shape()
	return wire.Header{Codec: uint8(codec.IDLearned), Tasks: wire.AllTasks, Channels: uint16(s.C), Height: uint16(s.H), Width: uint16(s.W),
		RequestID: id, Bundle: f.b.ID}, payload
}

// direct runs the split path in process: encoder, quantisation, heads.
func (f *fixture) direct(t *testing.T, enc *edge.Encoder, file []byte) []wire.Result {
	img, err := edge.DecodeImage(file)
	if err != nil {
		t.Fatal(err)
	}
	y, _, err := enc.Latent(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	l := enc.Codec.(*codec.Learned)
	sym, err := l.Quantize(nil, f.b.Shape(), y)
	if err != nil {
		t.Fatal(err)
	}
	out, err := f.model.Run(context.Background(), l.Dequantize(nil, f.b.Shape(), sym), wire.AllTasks)
	if err != nil {
		t.Fatal(err)
	}
	return out.Results
}

func TestTwoEdgesMatchInProcess(t *testing.T) {
	f := newFixture(t, fixtureOptions{delay: time.Millisecond, model: cloud.ModelOptions{Batch: cloud.BatchOptions{MaxBatch: 4, Wait: time.Millisecond}}})
	enc := f.newEncoder(t)
	metrics := httptest.NewServer(f.server.Admin())
	defer metrics.Close()

	const perEdge = 12
	var wg sync.WaitGroup
	for e := range 2 {
		agent, err := edge.NewAgent(enc, f.newClient(t), edge.AgentOptions{Concurrency: 3})
		if err != nil {
			t.Fatal(err)
		}
		items := make(chan edge.Item)
		go func() {
			for i := range perEdge {
				items <- edge.Item{Index: i, Name: fmt.Sprintf("edge%d/%d", e, i), Data: pngImage(t, uint64(100*e+i))}
			}
			close(items)
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 0
			agent.Run(context.Background(), items, func(r edge.Record) {
				n++
				if r.Status != "ok" {
					t.Errorf("%s: %s %s", r.Image, r.Status, r.Error)
					return
				}
				var seed uint64
				fmt.Sscanf(r.Image, "edge%d/%d", new(int), &seed)
				want := f.direct(t, enc, pngImage(t, uint64(100*e)+seed))
				if !reflect.DeepEqual(r.Reply.Results, want) {
					t.Errorf("%s: results over QUIC differ from the in-process run:\n got %+v\nwant %+v", r.Image, r.Reply.Results, want)
				}
				if len(r.Reply.Results) != 3 || r.Latency.Total <= 0 || r.Bytes <= wire.HeaderSize {
					t.Errorf("%s: %d results, latency %+v, %d bytes", r.Image, len(r.Reply.Results), r.Latency, r.Bytes)
				}
			})
			if n != perEdge {
				t.Errorf("edge %d: %d records, want %d", e, n, perEdge)
			}
		}()
	}
	wg.Wait()
	if runs, items := f.engines.Runs.Load(), f.engines.Items.Load(); runs >= items {
		t.Logf("no batch formed: %d runs for %d items", runs, items)
	}

	// The scrape shows the stage histograms and the request counters.
	resp, err := metrics.Client().Get(metrics.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`splitstream_cloud_stage_seconds_bucket{stage="decode"`,
		`splitstream_cloud_stage_seconds_bucket{stage="head:detect"`,
		`splitstream_cloud_stage_seconds_count{stage="queue"} 24`,
		`splitstream_cloud_requests_total{status="ok",task="classify"} 24`,
		`splitstream_cloud_requests_total{status="ok",task="segment"} 24`,
		`splitstream_cloud_batch_size_bucket{stage="trunk"`,
		`splitstream_cloud_queue_depth 0`,
		`splitstream_cloud_received_bytes_total`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	resp, err = metrics.Client().Get(metrics.URL + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("/healthz: %v %v", err, resp.Status)
	}
}

func TestOverloaded(t *testing.T) {
	f := newFixture(t, fixtureOptions{
		delay:  30 * time.Millisecond,
		model:  cloud.ModelOptions{Batch: cloud.BatchOptions{MaxBatch: 1}},
		server: cloud.Options{QueueSize: 1, Workers: 1},
	})
	enc := f.newEncoder(t)
	client := f.newClient(t)
	h, payload := f.request(t, enc, pngImage(t, 1), 0)
	const burst = 12
	statuses := make([]wire.Status, burst)
	errs := make([]error, burst)
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range burst {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := h
			h.RequestID = uint64(i + 1)
			r, err := client.Do(ctx, h, payload)
			if err != nil {
				errs[i] = err
				return
			}
			if r.RequestID != h.RequestID {
				errs[i] = fmt.Errorf("reply for request %d names %d", h.RequestID, r.RequestID)
			}
			statuses[i] = r.Status
		}()
	}
	wg.Wait()
	count := map[wire.Status]int{}
	for i := range burst {
		if errs[i] != nil {
			t.Errorf("request %d: %v (timed out or failed instead of a reply)", i, errs[i])
		}
		count[statuses[i]]++
	}
	t.Logf("burst of %d on a queue of 1: %v", burst, count)
	if count[wire.StatusOverloaded] == 0 || count[wire.StatusOK] == 0 || count[wire.StatusOK]+count[wire.StatusOverloaded] != burst {
		t.Fatalf("statuses %v: want some ok, some overloaded, nothing else", count)
	}
}

func TestBadRequestsDoNotStopService(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	enc := f.newEncoder(t)
	client := f.newClient(t)
	h, payload := f.request(t, enc, pngImage(t, 7), 1)
	frame := func(h wire.Header, p []byte) []byte {
		var b bytes.Buffer
		if err := wire.WriteRequest(&b, h, p); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	good := frame(h, payload)
	withHeader := func(mut func(*wire.Header)) []byte { h := h; mut(&h); return frame(h, payload) }
	cases := []struct {
		name  string
		frame []byte
		want  wire.Status
	}{
		{"bad magic", append([]byte("XX"), good[2:]...), wire.StatusBadRequest},
		{"short header", good[:30], wire.StatusBadRequest},
		{"payload cut short", good[:len(good)-3], wire.StatusBadRequest},
		{"checksum mismatch", func() []byte { b := bytes.Clone(good); b[len(b)-1] ^= 1; return b }(), wire.StatusBadRequest},
		{"rANS string truncated", frame(h, payload[:len(payload)-4]), wire.StatusBadRequest},
		{"rANS string garbage", frame(h, bytes.Repeat([]byte{0xA5}, len(payload))), wire.StatusBadRequest},
		{"bytes after the payload", append(bytes.Clone(good), 0), wire.StatusBadRequest},
		{"wrong shape", withHeader(func(h *wire.Header) { h.Width++ }), wire.StatusBadRequest},
		{"unknown codec", withHeader(func(h *wire.Header) { h.Codec = 99 }), wire.StatusBadRequest},
		{"image codec for a split bundle", withHeader(func(h *wire.Header) { h.Codec = uint8(codec.IDPNG) }), wire.StatusBadRequest},
		{"unknown bundle", withHeader(func(h *wire.Header) { h.Bundle[0] ^= 0xff }), wire.StatusUnknownBundle},
		{"raw float32 of the wrong size", withHeader(func(h *wire.Header) { h.Codec = uint8(codec.IDRawF32) }), wire.StatusBadRequest},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := client.DoRaw(ctx, tc.frame)
			if err != nil {
				t.Fatalf("no reply: %v", err)
			}
			if r.Status != tc.want {
				t.Fatalf("status %v (%s), want %v", r.Status, r.Message, tc.want)
			}
			// The server goes on serving on the same connection.
			r, err = client.DoRaw(ctx, good)
			if err != nil || r.Status != wire.StatusOK {
				t.Fatalf("good request after it: %v %+v", err, r)
			}
		})
	}
	if st := client.Stats(); st.Connects != 1 {
		t.Errorf("%d connections: the bad requests broke the connection", st.Connects)
	}
}

func TestGracefulShutdownFinishesInFlight(t *testing.T) {
	f := newFixture(t, fixtureOptions{delay: 150 * time.Millisecond, model: cloud.ModelOptions{Batch: cloud.BatchOptions{MaxBatch: 1}}, server: cloud.Options{Workers: 4}})
	enc := f.newEncoder(t)
	client := f.newClient(t)
	h, payload := f.request(t, enc, pngImage(t, 3), 1)
	// Warm the connection so the requests below are in flight at once.
	if r, err := client.Do(context.Background(), h, payload); err != nil || r.Status != wire.StatusOK {
		t.Fatalf("warm-up: %v %+v", err, r)
	}
	const n = 4
	errs := make(chan error, n)
	for i := range n {
		go func() {
			h := h
			h.RequestID = uint64(10 + i)
			r, err := client.Do(context.Background(), h, payload)
			if err == nil && r.Status != wire.StatusOK {
				err = fmt.Errorf("status %v: %s", r.Status, r.Message)
			}
			errs <- err
		}()
	}
	time.Sleep(100 * time.Millisecond) // the requests are running (each takes 3 x 150 ms)
	f.shutdown(t)
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("in-flight request: %v", err)
		}
	}
}

// ticketCache is a session cache that reports when a ticket is stored.
type ticketCache struct {
	tls.ClientSessionCache
	stored chan struct{}
}

func (c *ticketCache) Put(key string, cs *tls.ClientSessionState) {
	c.ClientSessionCache.Put(key, cs)
	if cs != nil {
		select {
		case c.stored <- struct{}{}:
		default:
		}
	}
}

func TestReconnectResumes0RTT(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	enc := f.newEncoder(t)
	cache := &ticketCache{ClientSessionCache: tls.NewLRUClientSessionCache(4), stored: make(chan struct{}, 1)}
	cliTLS := f.client.Clone()
	cliTLS.ClientSessionCache = cache
	client, err := edge.NewClient(f.addr, edge.ClientOptions{TLS: cliTLS, Logger: quiet, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	h, payload := f.request(t, enc, pngImage(t, 5), 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if r, err := client.Do(ctx, h, payload); err != nil || r.Status != wire.StatusOK {
		t.Fatalf("first request: %v %+v", err, r)
	}
	select { // the session ticket arrives after the handshake
	case <-cache.stored:
	case <-ctx.Done():
		t.Fatal("no session ticket from the server")
	}
	// Restart the server on the same address with the same TLS config (and
	// so the same session ticket keys).
	f.shutdown(t)
	srv2, err := cloud.New([]*cloud.Model{f.model}, cloud.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	sctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv2.Serve(sctx, pc, f.srvTLS); close(done) }()
	defer func() { stop(); <-done }()
	if r, err := client.Do(ctx, h, payload); err != nil || r.Status != wire.StatusOK {
		t.Fatalf("request after the restart: %v %+v", err, r)
	}
	st := client.Stats()
	for wait := time.Now(); st.Resumed0RTT == 0 && time.Since(wait) < 2*time.Second; st = client.Stats() {
		time.Sleep(5 * time.Millisecond) // the client records 0-RTT once its handshake completes
	}
	t.Logf("connections %d, resumed with 0-RTT %d", st.Connects, st.Resumed0RTT)
	if st.Connects != 2 {
		t.Fatalf("%d connections, want 2 (one reconnect)", st.Connects)
	}
	if st.Resumed0RTT != 1 {
		t.Fatalf("the reconnection did not resume with 0-RTT")
	}
}

func TestDeadlineExceeded(t *testing.T) {
	f := newFixture(t, fixtureOptions{delay: 40 * time.Millisecond, model: cloud.ModelOptions{Batch: cloud.BatchOptions{MaxBatch: 1}}})
	enc := f.newEncoder(t)
	client := f.newClient(t)
	h, payload := f.request(t, enc, pngImage(t, 9), 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h.DeadlineMS = 50 // the trunk and the heads take 80 ms
	r, err := client.Do(ctx, h, payload)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != wire.StatusDeadlineExceeded {
		t.Fatalf("status %v (%s), want deadline_exceeded", r.Status, r.Message)
	}
	h.DeadlineMS = 5000
	if r, err = client.Do(ctx, h, payload); err != nil || r.Status != wire.StatusOK {
		t.Fatalf("with time enough: %v %+v", err, r)
	}
}
