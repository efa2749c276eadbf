package cloud

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the server's Prometheus metrics.
type metrics struct {
	stage      *prometheus.HistogramVec // seconds per stage
	received   prometheus.Counter       // request bytes (header and payload)
	requests   *prometheus.CounterVec   // by status and task
	queueDepth prometheus.Gauge
	batchSize  *prometheus.HistogramVec // by stage
	inflight   prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		stage: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "splitstream_cloud_stage_seconds",
			Help:    "Time a request spent in each cloud stage (queue, decode, trunk, head:<task>, post, total).",
			Buckets: prometheus.ExponentialBuckets(50e-6, 2, 18), // 50 µs .. 6.5 s
		}, []string{"stage"}),
		received: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "splitstream_cloud_received_bytes_total",
			Help: "Request bytes received (headers and payloads).",
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "splitstream_cloud_requests_total",
			Help: "Requests answered, by status and requested task (a request counts once per task).",
		}, []string{"status", "task"}),
		queueDepth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "splitstream_cloud_queue_depth",
			Help: "Requests waiting in the queue for a worker.",
		}),
		batchSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "splitstream_cloud_batch_size",
			Help:    "Requests per graph run, by stage.",
			Buckets: []float64{1, 2, 3, 4, 6, 8, 12, 16, 24, 32},
		}, []string{"stage"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "splitstream_cloud_inflight_requests",
			Help: "Requests read and not yet answered.",
		}),
	}
	reg.MustRegister(m.stage, m.received, m.requests, m.queueDepth, m.batchSize, m.inflight)
	return m
}
