// Package trace is the camera workload bench (`splitstream bench trace`):
// frames arrive at a fixed rate, the edge handles them one at a time at an
// operating point that is either fixed or chosen per frame by the adaptive
// policy (edge/policy), the request crosses a link that replays a recorded
// cellular trace (bench/link), and each frame is scored by whether its
// correct answer arrived within the SLO. docs/ADAPTIVE.md describes what is
// measured and what is replayed.
//
// The per-frame loop (Loop) is independent of how a frame's work is done:
// the bench plugs in a Device that replays calibrated compute, an agent can
// plug in one that computes.
package trace

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/splitstream/splitstream/edge/policy"
)

// Frame is one camera frame of a run.
type Frame struct {
	Seq   int           // 0, 1, 2, ... in arrival order
	Image int           // index into the cycle of test images
	At    time.Duration // arrival, from the start of the run
}

// Schedule lists the frames of a run: one every 1/fps from time 0 while
// before duration, cycling over images test images (frame k shows image
// k mod images).
func Schedule(fps float64, duration time.Duration, images int) ([]Frame, error) {
	if !(fps > 0) || duration <= 0 || images <= 0 {
		return nil, errors.New("trace: schedule needs fps, duration and images above 0")
	}
	at := func(k int) time.Duration { return time.Duration(float64(k) / fps * float64(time.Second)) }
	if float64(duration)*fps/float64(time.Second) > MaxFrames {
		return nil, errors.New("trace: more frames than MaxFrames")
	}
	var out []Frame
	for k := 0; at(k) < duration; k++ {
		out = append(out, Frame{Seq: k, Image: k % images, At: at(k)})
	}
	return out, nil
}

// MaxFrames bounds the frames of one run (a day at 60 fps).
const MaxFrames = 60 * 60 * 60 * 24

// Work is what the device's compute for one frame produced.
type Work struct {
	// Edge is the compute time on the device (as the device saw it: for
	// an emulated device, the scaled time it waited out).
	Edge time.Duration
	// Bytes is the request's size on the wire (header and payload); 0 for
	// a local point.
	Bytes int
	// Local is set for a local point: the answer is already here.
	Local *Answer
	// Request is the device's own state for Send (the payload).
	Request any
}

// Answer is what came back for one frame.
type Answer struct {
	Top1  int           // the top-1 class
	OK    bool          // whether the reply carried a classification
	Cloud time.Duration // the cloud's own stages (0 for a local point)
}

// Device does a frame's work at an operating point. Compute is called for
// one frame at a time, in arrival order (the device computes serially);
// Send may run for several frames at once, while later frames compute.
type Device interface {
	Compute(ctx context.Context, point int, f Frame) (Work, error)
	Send(ctx context.Context, point int, w Work) (Answer, error)
}

// Chooser picks the point of each frame and learns from the outcomes. The
// loop calls it from several goroutines, never at once (it holds a lock).
type Chooser interface {
	Choose() int
	Observe(policy.Sample)
	Fail(point int)
}

// Fixed is a chooser that always picks the same point.
type Fixed int

// Choose returns the point.
func (f Fixed) Choose() int { return int(f) }

// Observe does nothing: a fixed choice learns nothing.
func (Fixed) Observe(policy.Sample) {}

// Fail does nothing.
func (Fixed) Fail(int) {}

// Adaptive is a chooser that asks edge/policy for each frame.
type Adaptive struct{ *policy.Policy }

// Choose returns the policy's choice.
func (a Adaptive) Choose() int { return a.Policy.Choose() }

// Fail tells the policy that a request with point i got no answer.
func (a Adaptive) Fail(i int) { a.Policy.FailPoint(i) }

// Status is what became of a frame.
type Status uint8

// The statuses of a frame.
const (
	Dropped  Status = iota // the edge could not start it within its deadline
	Answered               // an answer came back
	Failed                 // the work or the request failed (or timed out)
)

// Outcome is what became of one frame.
type Outcome struct {
	Frame
	Status Status
	Point  int           // the point it was handled at; -1 when dropped
	Start  time.Duration // when the device started it, from the start of the run
	// Latency is from the frame's arrival to its answer (Answered only).
	Latency time.Duration
	Top1    int  // the answer's top-1 class (Answered with a classification)
	HasTop1 bool // whether the answer carried one
	Edge    time.Duration
	Bytes   int
}

// LoopOptions configure Loop.
type LoopOptions struct {
	// SLO is a frame's deadline: a frame not started within SLO of its
	// arrival is dropped, and an answer counts as in time within SLO.
	SLO time.Duration
	// Timeout bounds a request, from the end of the frame's compute; a
	// request not answered by then is cancelled and counts as failed.
	Timeout time.Duration
	// OnOutcome, if set, sees each outcome when it is final (from several
	// goroutines, one at a time).
	OnOutcome func(Outcome)
	// Clock is the loop's time; nil means the wall clock. Tests give a
	// virtual one.
	Clock Clock
}

// Clock tells the time and waits.
type Clock interface {
	Now() time.Time
	// SleepUntil waits until t or the end of ctx; it reports whether t
	// came.
	SleepUntil(ctx context.Context, t time.Time) bool
}

// wallClock is the real time.
type wallClock struct{}

func (wallClock) Now() time.Time                                   { return time.Now() }
func (wallClock) SleepUntil(ctx context.Context, t time.Time) bool { return sleepUntil(ctx, t) }

// Loop runs the frames through dev, with ch choosing each frame's point,
// starting at start (frame f arrives at start + f.At). It returns one
// outcome per frame, in frame order, once every request has ended.
func Loop(ctx context.Context, start time.Time, frames []Frame, dev Device, ch Chooser, o LoopOptions) []Outcome {
	clock := o.Clock
	if clock == nil {
		clock = wallClock{}
	}
	out := make([]Outcome, len(frames))
	final := make([]bool, len(frames))
	var mu sync.Mutex // serialises ch, OnOutcome and final
	done := func(i int, oc Outcome) {
		out[i], final[i] = oc, true
		if o.OnOutcome != nil {
			o.OnOutcome(oc)
		}
	}
	var wg sync.WaitGroup
	for i, f := range frames {
		arrival := start.Add(f.At)
		if !clock.SleepUntil(ctx, arrival) {
			break
		}
		began := clock.Now()
		oc := Outcome{Frame: f, Point: -1, Start: began.Sub(start)}
		if began.Sub(arrival) > o.SLO {
			mu.Lock()
			done(i, oc) // Dropped
			mu.Unlock()
			continue
		}
		mu.Lock()
		oc.Point = ch.Choose()
		mu.Unlock()
		w, err := dev.Compute(ctx, oc.Point, f)
		oc.Edge, oc.Bytes = w.Edge, w.Bytes
		switch {
		case err != nil:
			oc.Status = Failed
			mu.Lock()
			ch.Fail(oc.Point)
			done(i, oc)
			mu.Unlock()
		case w.Local != nil:
			now := clock.Now()
			answered(&oc, *w.Local, now.Sub(arrival))
			mu.Lock()
			ch.Observe(policy.Sample{Point: oc.Point, Edge: w.Edge, Total: now.Sub(began)})
			done(i, oc)
			mu.Unlock()
		default:
			wg.Add(1)
			go func() {
				defer wg.Done()
				rctx, cancel := context.WithTimeout(ctx, o.Timeout)
				a, err := dev.Send(rctx, oc.Point, w)
				cancel()
				now := clock.Now()
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					oc.Status = Failed
					ch.Fail(oc.Point)
				} else {
					answered(&oc, a, now.Sub(arrival))
					ch.Observe(policy.Sample{Point: oc.Point, Edge: w.Edge, Bytes: w.Bytes, Cloud: a.Cloud, Total: now.Sub(began)})
				}
				done(i, oc)
			}()
		}
	}
	wg.Wait()
	// Frames the context cut off before they arrived count as dropped.
	for i := range out {
		if !final[i] {
			out[i] = Outcome{Frame: frames[i], Point: -1}
		}
	}
	return out
}

func answered(oc *Outcome, a Answer, latency time.Duration) {
	oc.Status, oc.Latency, oc.Top1, oc.HasTop1 = Answered, latency, a.Top1, a.OK
}

// sleepUntil waits until t or the end of ctx; it reports whether t came.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	}
}
