package edge

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the agent's Prometheus metrics.
type Metrics struct {
	stage    *prometheus.HistogramVec
	sent     prometheus.Counter
	requests *prometheus.CounterVec
	point    *prometheus.GaugeVec
}

// NewMetrics registers the agent's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		stage: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "splitstream_edge_stage_seconds",
			Help:    "Latency of each stage of a request seen from the edge (preprocess, encoder, entropy_encode, network, cloud_queue, decode, heads, post, total).",
			Buckets: prometheus.ExponentialBuckets(50e-6, 2, 18),
		}, []string{"stage"}),
		sent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "splitstream_edge_sent_bytes_total",
			Help: "Request bytes sent (headers and payloads).",
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "splitstream_edge_requests_total",
			Help: "Images processed, by status (a wire status, error for a failure on the edge, or local when the edge's own model answered).",
		}, []string{"status"}),
		point: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "splitstream_edge_operating_point",
			Help: "The adaptive policy's operating point: 1 for the current one, 0 for the others (none with the fixed policy).",
		}, []string{"point"}),
	}
	reg.MustRegister(m.stage, m.sent, m.requests, m.point)
	return m
}

// Observe records one image.
func (m *Metrics) Observe(r Record) {
	status := r.Status
	if r.Source == "local" {
		status = "local"
	}
	m.requests.WithLabelValues(status).Inc()
	m.sent.Add(float64(r.Bytes))
	if status != "ok" {
		return
	}
	for _, s := range r.Latency.Stages() {
		m.stage.WithLabelValues(s.Name).Observe(s.MS / 1000)
	}
}

// ServeMetrics registers the agent's metrics, with the Go runtime and process
// collectors, in a new registry and serves them at /metrics on the TCP
// address addr until ctx ends. The address is bound before it returns, so a
// port in use is an error at start, not a log line later.
func ServeMetrics(ctx context.Context, addr string) (*Metrics, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := NewMetrics(reg)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("edge: metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	return m, nil
}
