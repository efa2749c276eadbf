package trace

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/splitstream/splitstream/edge/policy"
)

func TestSchedule(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name     string
		fps      float64
		duration time.Duration
		images   int
		wantAt   []time.Duration
		wantImg  []int
	}{
		{"10 fps for half a second", 10, 500 * ms, 10, []time.Duration{0, 100 * ms, 200 * ms, 300 * ms, 400 * ms}, []int{0, 1, 2, 3, 4}},
		{"cycling over 2 images", 10, 500 * ms, 2, []time.Duration{0, 100 * ms, 200 * ms, 300 * ms, 400 * ms}, []int{0, 1, 0, 1, 0}},
		{"a frame at the end is not in the run", 4, time.Second, 3, []time.Duration{0, 250 * ms, 500 * ms, 750 * ms}, []int{0, 1, 2, 0}},
		{"a third of a second apart", 3, time.Second, 5, []time.Duration{0, 333333333, 666666666}, []int{0, 1, 2}},
		{"shorter than one interval: one frame", 1, 10 * ms, 1, []time.Duration{0}, []int{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fr, err := Schedule(tt.fps, tt.duration, tt.images)
			if err != nil {
				t.Fatal(err)
			}
			var at []time.Duration
			var img []int
			for k, f := range fr {
				if f.Seq != k {
					t.Errorf("frame %d has Seq %d", k, f.Seq)
				}
				at, img = append(at, f.At), append(img, f.Image)
			}
			if !slices.Equal(at, tt.wantAt) || !slices.Equal(img, tt.wantImg) {
				t.Errorf("arrivals %v images %v, want %v %v", at, img, tt.wantAt, tt.wantImg)
			}
		})
	}
	for _, bad := range []struct {
		fps    float64
		d      time.Duration
		images int
	}{{0, time.Second, 1}, {10, 0, 1}, {10, time.Second, 0}, {-1, time.Second, 1}, {1e9, 1e6 * time.Second, 1}} {
		if _, err := Schedule(bad.fps, bad.d, bad.images); err == nil {
			t.Errorf("Schedule(%v, %v, %d): no error", bad.fps, bad.d, bad.images)
		}
	}
}

// virtualClock is a clock that jumps: sleeping moves it to the time slept
// until, computing moves it on by the compute time.
type virtualClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *virtualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *virtualClock) SleepUntil(ctx context.Context, t time.Time) bool {
	c.advance(t.Sub(c.Now()))
	return ctx.Err() == nil
}

func (c *virtualClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d > 0 {
		c.now = c.now.Add(d)
	}
}

// fakeDevice computes each frame in compute[point] of virtual time; point
// 0 is local, the others answer at once (fail when failing is set).
type fakeDevice struct {
	clock   *virtualClock
	compute []time.Duration
	answer  func(image int) int
	failing bool
}

func (d *fakeDevice) Compute(ctx context.Context, point int, f Frame) (Work, error) {
	d.clock.advance(d.compute[point])
	w := Work{Edge: d.compute[point], Bytes: 100 * point, Request: f.Image}
	if point == 0 {
		w.Bytes = 0
		w.Local = &Answer{Top1: d.answer(f.Image), OK: true}
	}
	return w, nil
}

func (d *fakeDevice) Send(ctx context.Context, point int, w Work) (Answer, error) {
	if d.failing {
		return Answer{}, errors.New("link down")
	}
	return Answer{Top1: d.answer(w.Request.(int)), OK: true, Cloud: time.Millisecond}, nil
}

// recorder is a chooser that remembers what it was told.
type recorder struct {
	Fixed
	samples []policy.Sample
	fails   int
}

func (r *recorder) Observe(s policy.Sample) { r.samples = append(r.samples, s) }
func (r *recorder) Fail(int)                { r.fails++ }

func TestLoopDropsAtTheDeadline(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name    string
		compute time.Duration // per frame, on the device
		fps     float64
		slo     time.Duration
		frames  int
		want    []Status
		latency []time.Duration // of the answered frames, in order
	}{
		{
			name: "keeps up: every frame answered after its compute", compute: 30 * ms, fps: 10, slo: 150 * ms, frames: 4,
			want:    []Status{Answered, Answered, Answered, Answered},
			latency: []time.Duration{30 * ms, 30 * ms, 30 * ms, 30 * ms},
		},
		{
			// Frame k arrives at 40k ms; the device is free at 100 ms per
			// frame started. Waits: 0, 60, 120 (started), 180 (dropped),
			// 140 (started at 300), 200, 160 (dropped), 120 (started at 400).
			name: "slower than the camera: frames that cannot start within the SLO are dropped", compute: 100 * ms, fps: 25, slo: 150 * ms, frames: 8,
			want:    []Status{Answered, Answered, Answered, Dropped, Answered, Dropped, Dropped, Answered},
			latency: []time.Duration{100 * ms, 160 * ms, 220 * ms, 240 * ms, 220 * ms},
		},
		{
			// Frame 1 arrives at 250 ms and starts at 400: it waited the SLO
			// exactly; frame 2 (500 ms) would wait 300.
			name: "waiting exactly the SLO still starts", compute: 400 * ms, fps: 4, slo: 150 * ms, frames: 3,
			want:    []Status{Answered, Answered, Dropped},
			latency: []time.Duration{400 * ms, 550 * ms},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &virtualClock{now: time.Unix(1000, 0)}
			dev := &fakeDevice{clock: clock, compute: []time.Duration{tt.compute}, answer: func(int) int { return 1 }}
			frames, err := Schedule(tt.fps, time.Duration(float64(tt.frames)/tt.fps*float64(time.Second))-time.Microsecond, 3)
			if err != nil {
				t.Fatal(err)
			}
			ch := &recorder{Fixed: 0}
			out := Loop(context.Background(), clock.Now(), frames, dev, ch, LoopOptions{SLO: tt.slo, Timeout: time.Second, Clock: clock})
			var got []Status
			var lat []time.Duration
			for _, o := range out {
				got = append(got, o.Status)
				if o.Status == Answered {
					lat = append(lat, o.Latency)
				}
				if (o.Status == Dropped) != (o.Point == -1) {
					t.Errorf("frame %d: status %d, point %d", o.Seq, o.Status, o.Point)
				}
			}
			if !slices.Equal(got, tt.want) || !slices.Equal(lat, tt.latency) {
				t.Errorf("statuses %v latencies %v, want %v %v", got, lat, tt.want, tt.latency)
			}
			if len(ch.samples) != len(tt.latency) {
				t.Errorf("%d samples observed, want one per answered frame (%d)", len(ch.samples), len(tt.latency))
			}
		})
	}
}

func TestLoopOffloadFailuresAndSamples(t *testing.T) {
	ms := time.Millisecond
	for _, failing := range []bool{false, true} {
		clock := &virtualClock{now: time.Unix(1000, 0)}
		dev := &fakeDevice{clock: clock, compute: []time.Duration{0, 20 * ms}, answer: func(i int) int { return i }, failing: failing}
		frames, _ := Schedule(10, 500*ms, 2)
		ch := &recorder{Fixed: 1}
		out := Loop(context.Background(), clock.Now(), frames, dev, ch, LoopOptions{SLO: 150 * ms, Timeout: time.Second, Clock: clock})
		for _, o := range out {
			want := Answered
			if failing {
				want = Failed
			}
			if o.Status != want || o.Point != 1 || o.Bytes != 100 || o.Edge != 20*ms {
				t.Errorf("failing=%v: frame %d: %+v", failing, o.Seq, o)
			}
			if !failing && (o.Top1 != o.Image || !o.HasTop1) {
				t.Errorf("frame %d: answer %d for image %d", o.Seq, o.Top1, o.Image)
			}
		}
		if failing && (ch.fails != len(frames) || len(ch.samples) != 0) {
			t.Errorf("failing: %d fails, %d samples; want %d, 0", ch.fails, len(ch.samples), len(frames))
		}
		if !failing {
			for _, s := range ch.samples {
				// The answer's time is when the goroutine that sent it read
				// the virtual clock: at least the compute.
				if s.Point != 1 || s.Bytes != 100 || s.Edge != 20*ms || s.Cloud != ms || s.Total < 20*ms {
					t.Errorf("sample %+v", s)
				}
			}
		}
	}
}

func TestLoopStopsWithTheContext(t *testing.T) {
	clock := &virtualClock{now: time.Unix(1000, 0)}
	dev := &fakeDevice{clock: clock, compute: []time.Duration{time.Millisecond}, answer: func(int) int { return 0 }}
	frames, _ := Schedule(10, time.Second, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	out := Loop(ctx, clock.Now(), frames, dev, Fixed(0), LoopOptions{SLO: time.Second, Clock: clock})
	if len(out) != len(frames) {
		t.Fatalf("%d outcomes for %d frames", len(out), len(frames))
	}
	for i, o := range out {
		if o.Status != Dropped || o.Seq != i {
			t.Errorf("frame %d after cancel: %+v", i, o)
		}
	}
}
