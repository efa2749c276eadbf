package edge

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Recorder takes the agent's records one by one: it writes each as a JSON
// line, flushed at once so that a killed edge leaves only whole lines, adds
// it to the summary and the metrics, and keeps a progress line up to date.
// Record is safe for concurrent use.
type Recorder struct {
	mu      sync.Mutex
	out     *bufio.Writer
	enc     *json.Encoder
	err     error // the first write error
	sum     Summary
	metrics *Metrics
	start   time.Time

	progress io.Writer // nil: no progress line
	quit     chan struct{}
	ended    chan struct{}
}

// NewRecorder writes JSON lines to out and observes records in metrics (nil
// for none). When progress is a terminal, a line there shows images,
// errors and the rate five times a second until Close.
func NewRecorder(out io.Writer, metrics *Metrics, progress *os.File) *Recorder {
	bw := bufio.NewWriter(out)
	r := &Recorder{out: bw, enc: json.NewEncoder(bw), metrics: metrics, start: time.Now()}
	if st, err := progress.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
		r.progress = progress
		r.quit, r.ended = make(chan struct{}), make(chan struct{})
		go r.showProgress()
	}
	return r
}

// Record writes and counts one record.
func (r *Recorder) Record(rec Record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sum.Add(rec)
	if r.metrics != nil {
		r.metrics.Observe(rec)
	}
	if r.err == nil {
		if r.err = r.enc.Encode(rec); r.err == nil {
			r.err = r.out.Flush()
		}
	}
}

// Close clears the progress line and returns the summary and the first
// write error.
func (r *Recorder) Close() (*Summary, error) {
	if r.quit != nil {
		close(r.quit)
		<-r.ended
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return &r.sum, r.err
}

func (r *Recorder) showProgress() {
	defer close(r.ended)
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			r.mu.Lock()
			n, failed := r.sum.Count, r.sum.Errors
			r.mu.Unlock()
			fmt.Fprintf(r.progress, "\r%d images, %d errors, %.1f images/s ", n, failed, float64(n)/time.Since(r.start).Seconds())
		case <-r.quit:
			fmt.Fprint(r.progress, "\r\033[K")
			return
		}
	}
}

// Report says where RunReport writes: the records as JSON lines, the
// summary, the metrics (nil: none) and a progress line (on a terminal).
type Report struct {
	Records, Summary io.Writer
	Metrics          *Metrics
	Progress         *os.File
}

// RunReport processes the images named by inputs (RunInputs), writes a
// record per image and then the summary with the connection's figures
// (and the adaptive policy's: switches, frames per point). It
// fails when an input could not be read, a record not written, or an image
// failed.
func (a *Agent) RunReport(ctx context.Context, inputs []string, stdin io.Reader, r Report) error {
	start, rec := time.Now(), NewRecorder(r.Records, r.Metrics, r.Progress)
	if a.op != nil {
		a.op.setMetrics(r.Metrics)
	}
	readErr := a.RunInputs(ctx, inputs, stdin, rec.Record)
	sum, writeErr := rec.Close()
	sum.Write(r.Summary)
	st, as := a.client.Stats(), a.Stats()
	fmt.Fprintf(r.Summary, "connections %d (0-RTT resumed %d), resent after a broken connection %d, overloaded replies %d, retries %d, %.1f s\n",
		st.Connects, st.Resumed0RTT, st.Resent, as.OverloadedReplies, as.Retries, time.Since(start).Seconds())
	if ad, ok := a.Adaptive(); ok {
		fmt.Fprintf(r.Summary, "adaptive: %d switches; frames per point:", ad.Switches)
		for i, p := range ad.Points {
			fmt.Fprintf(r.Summary, " %s %d", p.Name, ad.Frames[i])
		}
		fmt.Fprintln(r.Summary)
	}
	if err := errors.Join(readErr, writeErr); err != nil {
		return err
	}
	if sum.Errors > 0 {
		return fmt.Errorf("%d of %d images failed", sum.Errors, sum.Count)
	}
	return nil
}
