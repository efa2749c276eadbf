package edge

import (
	"fmt"
	"io"
	"math"
	"slices"
	"text/tabwriter"
)

// Summary aggregates records: counts, bytes per image and latency
// percentiles per stage over the successful requests.
type Summary struct {
	Count, Errors int
	// Local counts the images the local model answered (Record.Source);
	// they are neither errors nor in the cloud's bytes and latencies.
	Local  int
	bytes  int
	stages map[string][]float64
	order  []string
}

// Add records one image.
func (s *Summary) Add(r Record) {
	s.Count++
	switch {
	case r.Status != "ok":
		s.Errors++
		return
	case r.Source == "local":
		s.Local++
		return
	}
	s.bytes += r.Bytes
	if s.stages == nil {
		s.stages = map[string][]float64{}
	}
	for _, st := range r.Latency.Stages() {
		if _, ok := s.stages[st.Name]; !ok {
			s.order = append(s.order, st.Name)
		}
		s.stages[st.Name] = append(s.stages[st.Name], st.MS)
	}
}

// BytesPerImage is the mean bytes sent per successful image.
func (s *Summary) BytesPerImage() float64 {
	if ok := s.Count - s.Errors - s.Local; ok > 0 {
		return float64(s.bytes) / float64(ok)
	}
	return 0
}

// Percentile returns the p-th percentile (0..100, nearest rank) of a
// stage's latencies in milliseconds.
func (s *Summary) Percentile(stage string, p float64) float64 {
	v := slices.Clone(s.stages[stage])
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	k := int(math.Ceil(p/100*float64(len(v)))) - 1
	return v[max(0, min(k, len(v)-1))]
}

// Percentiles are a stage's p50, p95 and p99 in milliseconds.
type Percentiles struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
}

// Latency returns the percentiles of every stage.
func (s *Summary) Latency() map[string]Percentiles {
	out := map[string]Percentiles{}
	for _, st := range s.order {
		out[st] = Percentiles{s.Percentile(st, 50), s.Percentile(st, 95), s.Percentile(st, 99)}
	}
	return out
}

// Write prints the summary table.
func (s *Summary) Write(w io.Writer) {
	fmt.Fprintf(w, "images %d, errors %d, answered locally %d, bytes/image %.1f\n", s.Count, s.Errors, s.Local, s.BytesPerImage())
	if len(s.order) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "stage (ms)\tp50\tp95\tp99\t")
	for _, st := range s.order {
		fmt.Fprintf(tw, "%s\t%.3f\t%.3f\t%.3f\t\n", st, s.Percentile(st, 50), s.Percentile(st, 95), s.Percentile(st, 99))
	}
	tw.Flush()
}
