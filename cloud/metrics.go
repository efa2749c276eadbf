package cloud

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the server's Prometheus metrics.
type metrics struct {
	stage      *prometheus.HistogramVec // seconds per stage
	received   prometheus.Counter       // request bytes (header and payload)
	requests   *prometheus.CounterVec   // by status and task
	queueDepth prometheus.Gauge
	batchSize  *prometheus.HistogramVec // by stage
	inflight   prometheus.Gauge
	conns      prometheus.Gauge
	refused    *prometheus.CounterVec // requests refused by a limit, by limit
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
	m.conns = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "splitstream_cloud_connections",
		Help: "QUIC connections held (counted from the handshake until they close).",
	})
	m.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "splitstream_cloud_refused_total",
		Help: "Streams and requests refused by a limit: max_handlers, inflight_bytes, read_timeout.",
	}, []string{"limit"})
	reg.MustRegister(m.stage, m.received, m.requests, m.queueDepth, m.batchSize, m.inflight, m.conns, m.refused)
	// The Go runtime's and the process's own metrics (go_goroutines,
	// process_resident_memory_bytes, ...), unless the caller's registry
	// has them already.
	for _, c := range []prometheus.Collector{collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		if err := reg.Register(c); err != nil && !errors.As(err, new(prometheus.AlreadyRegisteredError)) {
			panic(err)
		}
	}
	return m
}
