package policy

import (
	"math"
	"testing"
	"time"
)

// The points of the shipped bundles, roughly: the full model on a slow
// device, the image as JPEG q90 to the teacher, and two learned rates.
var testPoints = []Point{
	{Name: "edge-only", Accuracy: 0.858, Local: true},
	{Name: "jpeg-q90", Accuracy: 0.856},
	{Name: "learned-b0.11", Accuracy: 0.844},
	{Name: "learned-b1", Accuracy: 0.732},
}

// truth is a synthetic device and link from which samples are made.
type truth struct {
	edge  []time.Duration
	bytes []int
	cloud time.Duration
	rtt   time.Duration
	rate  float64 // bytes per ms
}

func defaultTruth() truth {
	return truth{
		edge:  []time.Duration{300 * time.Millisecond, 1 * time.Millisecond, 3 * time.Millisecond, 3 * time.Millisecond},
		bytes: []int{0, 3400, 630, 170},
		cloud: 7 * time.Millisecond, rtt: 50 * time.Millisecond, rate: 625, // 5 Mbit/s
	}
}

func (tr truth) sample(i int) Sample {
	if testPoints[i].Local {
		return Sample{Point: i, Edge: tr.edge[i], Total: tr.edge[i]}
	}
	transfer := time.Duration(float64(tr.bytes[i]) / tr.rate * float64(time.Millisecond))
	return Sample{Point: i, Edge: tr.edge[i], Bytes: tr.bytes[i], Cloud: tr.cloud,
		Total: tr.edge[i] + transfer + tr.rtt + tr.cloud}
}

// newCalibrated returns a policy that has seen every point once.
func newCalibrated(tr truth, o Options) *Policy {
	p := New(testPoints, o)
	p.ObserveRTT(tr.rtt)
	for i := range testPoints {
		p.Observe(tr.sample(i))
	}
	return p
}

// run makes n decisions, each answered under tr, and returns the choices.
func run(p *Policy, tr truth, n int) []int {
	var out []int
	for range n {
		i := p.Choose()
		out = append(out, i)
		p.Observe(tr.sample(i))
	}
	return out
}

func TestPredictMatchesTheModel(t *testing.T) {
	tr := defaultTruth()
	p := newCalibrated(tr, Options{SLO: 150 * time.Millisecond})
	for i := 1; i < len(testPoints); i++ {
		want := float64(tr.sample(i).Total) / float64(time.Millisecond)
		if got := p.Predict(i); math.Abs(got-want) > 0.5 {
			t.Errorf("%s: predicted %.2f ms, the model gives %.2f", testPoints[i].Name, got, want)
		}
	}
	if got := p.Predict(0); got != 300 {
		t.Errorf("edge-only predicted %.1f ms, want 300", got)
	}
}

func TestChoices(t *testing.T) {
	const slo = 150 * time.Millisecond
	tests := []struct {
		name  string
		steps func(p *Policy, tr *truth) []int // returns the choices to check
		want  []string
	}{
		{
			name:  "good link: the most accurate offload that fits",
			steps: func(p *Policy, tr *truth) []int { return run(p, *tr, 3) },
			want:  []string{"jpeg-q90", "jpeg-q90", "jpeg-q90"},
		},
		{
			name: "capacity drop: off jpeg after a few slow answers",
			steps: func(p *Policy, tr *truth) []int {
				run(p, *tr, 3)
				tr.rate = 25 // 0.2 Mbit/s: 3400 B take 136 ms
				for range 3 {
					p.Observe(tr.sample(1))
				}
				return run(p, *tr, 1)
			},
			want: []string{"learned-b0.11"},
		},
		{
			name: "nothing fits: the fastest",
			steps: func(p *Policy, tr *truth) []int {
				tr.rate, tr.rtt = 2, 200*time.Millisecond
				p.ObserveRTT(tr.rtt)
				for i := range testPoints {
					p.Observe(tr.sample(i))
				}
				return run(p, *tr, 2)
			},
			want: []string{"learned-b1", "learned-b1"},
		},
		{
			name: "outage: local, probing the link every ProbeEvery decisions",
			steps: func(p *Policy, tr *truth) []int {
				p.Fail()
				p.Fail()
				var out []int
				for range 10 {
					out = append(out, p.Choose()) // no answers: the link stays down
				}
				return out
			},
			want: []string{"edge-only", "edge-only", "edge-only", "edge-only", "edge-only", "edge-only", "edge-only", "edge-only", "edge-only", "learned-b1"},
		},
		{
			name: "nothing fits and local is fastest: probing the link every ProbeEvery decisions",
			steps: func(p *Policy, tr *truth) []int {
				tr.rate = 0.5                // 170 B take 340 ms: every offload is slower than the device's 300 ms
				for range poolWindow/3 + 1 { // until no fast sample is left
					for i := 1; i < len(testPoints); i++ {
						p.Observe(tr.sample(i))
					}
				}
				out := append(run(p, *tr, 9), p.Choose())
				tr.rate = 625 // the probe finds the link fast again
				p.Observe(tr.sample(out[9]))
				// Its one answer gives the link a chance again.
				return append(out, run(p, *tr, 1)...)
			},
			want: []string{"edge-only", "edge-only", "edge-only", "edge-only", "edge-only", "edge-only", "edge-only", "edge-only", "edge-only", "learned-b1", "learned-b1"},
		},
		{
			name: "link back: one answer ends the outage",
			steps: func(p *Policy, tr *truth) []int {
				p.Fail()
				p.Fail()
				first := p.Choose()
				p.Observe(tr.sample(3)) // a probe was answered
				return append([]int{first}, run(p, *tr, 1)...)
			},
			want: []string{"edge-only", "jpeg-q90"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := defaultTruth()
			p := newCalibrated(tr, Options{SLO: slo, Hold: 4, ProbeEvery: 10})
			got := tt.steps(p, &tr)
			if len(got) != len(tt.want) {
				t.Fatalf("%d choices, want %d", len(got), len(tt.want))
			}
			for k, i := range got {
				if testPoints[i].Name != tt.want[k] {
					names := make([]string, len(got))
					for j, g := range got {
						names[j] = testPoints[g].Name
					}
					t.Fatalf("choices %v, want %v", names, tt.want)
				}
			}
		})
	}
}

// After a capacity drop the policy moves off jpeg; when the link recovers
// it moves back up, but only once the slow samples have given way to fast
// ones and the better point was the best Hold decisions in a row.
func TestRecovery(t *testing.T) {
	tr := defaultTruth()
	p := newCalibrated(tr, Options{SLO: 150 * time.Millisecond, Hold: 4})
	if got := run(p, tr, 3); testPoints[got[2]].Name != "jpeg-q90" {
		t.Fatalf("good link: chose %s", testPoints[got[2]].Name)
	}
	tr.rate = 25 // 0.2 Mbit/s: 3400 B take 136 ms
	down := run(p, tr, 10)
	if last := testPoints[down[9]].Name; last == "jpeg-q90" {
		t.Fatalf("after the drop: still on %s", last)
	}
	tr.rate = 625
	up := run(p, tr, 400)
	for k := range p.Options().Hold - 1 {
		if testPoints[up[k]].Name == "jpeg-q90" {
			t.Fatalf("moved up at decision %d after the recovery, before Hold", k)
		}
	}
	switches := 0
	for k := 1; k < len(up); k++ {
		if up[k] != up[k-1] {
			switches++
			t.Logf("after the recovery, decision %d: %s", k, testPoints[up[k]].Name)
		}
	}
	if last := testPoints[up[len(up)-1]].Name; last != "jpeg-q90" || switches > 2 {
		t.Fatalf("%d decisions after the recovery: on %s after %d switches", len(up), last, switches)
	}
}

// A fast device fits the SLO with the full model: the policy keeps it, the
// most accurate point, and needs no link.
func TestFastDeviceStaysLocal(t *testing.T) {
	tr := defaultTruth()
	tr.edge[0] = 15 * time.Millisecond
	p := newCalibrated(tr, Options{SLO: 150 * time.Millisecond})
	for _, i := range run(p, tr, 5) {
		if i != 0 {
			t.Fatalf("chose %s", testPoints[i].Name)
		}
	}
}

// Noisy answers around the SLO's edge must not make the policy flap: with
// Hold, a point that fits only now and then is never taken.
func TestHysteresisAgainstFlapping(t *testing.T) {
	tr := defaultTruth()
	tr.edge[0] = time.Second
	p := newCalibrated(tr, Options{SLO: 150 * time.Millisecond, Hold: 3})
	switches, last := 0, p.Current()
	for k := range 60 {
		// jpeg alternates between fitting (rate 625) and not (rate 25).
		tr.rate = 625
		if k%2 == 1 {
			tr.rate = 25
		}
		i := p.Choose()
		if i != last {
			switches++
			last = i
		}
		p.Observe(tr.sample(i))
		if i != 1 {
			p.Observe(tr.sample(1)) // what jpeg would have measured: a probe from the estimates' view
		}
	}
	if switches > 4 {
		t.Errorf("%d switches in 60 decisions", switches)
	}
}

// Without the transport's round trip, the smallest network time stands in.
func TestRTTFromTheSmallestNetworkTime(t *testing.T) {
	tr := defaultTruth()
	p := New(testPoints, Options{SLO: 150 * time.Millisecond})
	p.Observe(tr.sample(1))
	p.Observe(tr.sample(3))
	want := float64(tr.rtt)/float64(time.Millisecond) + 170.0/625
	if got := p.RTT(); math.Abs(got-want) > 0.01 {
		t.Errorf("RTT %.3f ms, want %.3f", got, want)
	}
}

// Tolerance is hysteresis on the score: after a capacity drop sent the
// policy to learned-b0.11, a recovered link makes jpeg-q90 score 0.856
// against 0.844; with a tolerance of 0.02 the policy stays, without one it
// moves back up.
func TestTolerance(t *testing.T) {
	for _, tt := range []struct {
		tol  float64
		want string
	}{{0, "jpeg-q90"}, {0.02, "learned-b0.11"}} {
		tr := defaultTruth()
		p := newCalibrated(tr, Options{SLO: 150 * time.Millisecond, Tolerance: tt.tol, Hold: 2})
		tr.rate = 25
		run(p, tr, 10)
		tr.rate = 625
		got := run(p, tr, 400)
		if name := testPoints[got[len(got)-1]].Name; name != tt.want {
			t.Errorf("tolerance %v: on %s after the recovery, want %s", tt.tol, name, tt.want)
		}
	}
}

// The device's compute is a median: one late sample (the device was
// preempted) does not make a point that keeps up with the camera look as
// if it could not.
func TestLateComputeSample(t *testing.T) {
	tr := defaultTruth()
	tr.edge[0] = 63 * time.Millisecond
	p := newCalibrated(tr, Options{SLO: 150 * time.Millisecond, FrameInterval: 100 * time.Millisecond})
	run(p, tr, 3)
	late := tr.sample(0)
	late.Edge, late.Total = 450*time.Millisecond, 450*time.Millisecond
	p.Observe(late)
	for _, i := range run(p, tr, 5) {
		if !testPoints[i].Local {
			t.Fatalf("after one late compute sample: chose %s", testPoints[i].Name)
		}
	}
}

// A frame answered on the device while the link is down says nothing of
// the link: it stays down.
func TestLocalAnswerKeepsTheLinkDown(t *testing.T) {
	tr := defaultTruth()
	p := newCalibrated(tr, Options{SLO: 150 * time.Millisecond})
	p.FailPoint(1)
	p.FailPoint(1)
	p.Observe(tr.sample(0))
	if !p.LinkDown() {
		t.Fatal("a local answer marked the link up")
	}
	p.Observe(tr.sample(2))
	if p.LinkDown() {
		t.Fatal("an offloaded answer did not mark the link up")
	}
}

// Without a local point, a down link gets the frames that send the fewest
// bytes: they add the least to what the link must drain when it is back.
func TestOutageWithoutLocalPoint(t *testing.T) {
	tr := defaultTruth()
	p := New(testPoints[1:], Options{SLO: 150 * time.Millisecond})
	p.ObserveRTT(tr.rtt)
	for i := 1; i < len(testPoints); i++ {
		s := tr.sample(i)
		s.Point = i - 1
		p.Observe(s)
	}
	p.Fail()
	p.Fail()
	for range 3 {
		if i := p.Choose(); p.Points()[i].Name != "learned-b1" {
			t.Fatalf("link down, no local point: chose %s, want learned-b1", p.Points()[i].Name)
		}
	}
}

// A device that computes the full model within the SLO but slower than the
// camera's frames come cannot keep up: its frames would queue up to their
// deadline, so the policy offloads.
func TestSlowerThanTheCamera(t *testing.T) {
	tr := defaultTruth()
	tr.edge[0] = 106 * time.Millisecond // fits 150 ms x 0.8 alone
	for _, tt := range []struct {
		interval time.Duration
		want     string
	}{{0, "edge-only"}, {200 * time.Millisecond, "edge-only"}, {100 * time.Millisecond, "jpeg-q90"}} {
		p := newCalibrated(tr, Options{SLO: 150 * time.Millisecond, FrameInterval: tt.interval})
		for _, i := range run(p, tr, 3) {
			if testPoints[i].Name != tt.want {
				t.Errorf("frame interval %v: chose %s, want %s", tt.interval, testPoints[i].Name, tt.want)
			}
		}
	}
}
