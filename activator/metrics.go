package activator

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the activator's Prometheus collectors, all under
// zeroscale_activator_ and labelled by revision.
type metrics struct {
	requests      *prometheus.CounterVec   // revision, code
	latency       *prometheus.HistogramVec // revision, code
	rejected      *prometheus.CounterVec   // revision, reason
	held          *prometheus.GaugeVec     // revision
	queueWait     *prometheus.HistogramVec // revision
	coldStarts    *prometheus.CounterVec   // revision
	coldStartWait *prometheus.HistogramVec // revision
	coldStart     *prometheus.HistogramVec // revision
	coldPhase     *prometheus.HistogramVec // revision, phase
	retries       *prometheus.CounterVec   // revision
}

// waitBuckets span 5 ms to about 82 s: warm hand-offs to slow cold starts.
var waitBuckets = prometheus.ExponentialBuckets(0.005, 2, 15)

// latencyBuckets span 0.5 ms to about 65 s: a warm loopback hop to a
// long request.
var latencyBuckets = prometheus.ExponentialBuckets(0.0005, 2, 18)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "zeroscale", "activator"
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "requests_total",
			Help: "Requests handled, by revision and HTTP status code (499: the client left first; revision \"\": no known revision served it).",
		}, []string{"revision", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "request_duration_seconds",
			Help:    "Time from a request's arrival to the end of its response (held time included), by revision and HTTP status code.",
			Buckets: latencyBuckets,
		}, []string{"revision", "code"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "rejected_requests_total",
			Help: "Requests refused without reaching an instance, by revision and reason (queue_full, wait_timeout, request_timeout, deadline, revision_removed).",
		}, []string{"revision", "reason"}),
		held: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "held_requests",
			Help: "Requests currently held waiting for a free slot on a ready instance.",
		}, []string{"revision"}),
		queueWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "queue_wait_seconds",
			Help: "Time held requests waited before being sent to an instance.", Buckets: waitBuckets,
		}, []string{"revision"}),
		coldStarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "cold_starts_total",
			Help: "Times a request arrived at a revision with no ready instance.",
		}, []string{"revision"}),
		coldStartWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "cold_start_wait_seconds",
			Help: "Time requests held at zero waited for an instance to become ready.", Buckets: waitBuckets,
		}, []string{"revision"}),
		coldStart: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "cold_start_seconds",
			Help: "Time from the arrival of a request held at zero to the first byte of its response.", Buckets: waitBuckets,
		}, []string{"revision"}),
		coldPhase: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Subsystem: sub, Name: "cold_start_phase_seconds",
			Help:    "Time requests held at zero spent in each phase of the cold start (scale_decision, engine_start, app_listening, probe_passed, first_byte); per request the phases add up to zeroscale_activator_cold_start_seconds.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 18),
		}, []string{"revision", "phase"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "retries_total",
			Help: "Idempotent requests retried on another instance after a connection error.",
		}, []string{"revision"}),
	}
	if reg == nil {
		return m, nil
	}
	cs := m.collectors()
	for i, c := range cs {
		if err := reg.Register(c); err != nil {
			for _, done := range cs[:i] {
				reg.Unregister(done)
			}
			return nil, fmt.Errorf("activator: registering metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.requests, m.latency, m.rejected, m.held, m.queueWait, m.coldStarts, m.coldStartWait, m.coldStart, m.coldPhase, m.retries}
}

// forget drops every series of a removed revision.
func (m *metrics) forget(revision string) {
	l := prometheus.Labels{"revision": revision}
	m.requests.DeletePartialMatch(l)
	m.latency.DeletePartialMatch(l)
	m.rejected.DeletePartialMatch(l)
	m.held.DeletePartialMatch(l)
	m.queueWait.DeletePartialMatch(l)
	m.coldStarts.DeletePartialMatch(l)
	m.coldStartWait.DeletePartialMatch(l)
	m.coldStart.DeletePartialMatch(l)
	m.coldPhase.DeletePartialMatch(l)
	m.retries.DeletePartialMatch(l)
}

// revMetrics are the collectors of one revision, curried once.
type revMetrics struct {
	held           prometheus.Gauge
	queueWait      prometheus.Observer
	coldStarts     prometheus.Counter
	coldStartWait  prometheus.Observer
	coldStart      prometheus.Observer
	coldStartPhase [len(phases)]prometheus.Observer
	retries        prometheus.Counter
}

func (m *metrics) forRevision(revision string) revMetrics {
	rm := revMetrics{
		held:          m.held.WithLabelValues(revision),
		queueWait:     m.queueWait.WithLabelValues(revision),
		coldStarts:    m.coldStarts.WithLabelValues(revision),
		coldStartWait: m.coldStartWait.WithLabelValues(revision),
		coldStart:     m.coldStart.WithLabelValues(revision),
		retries:       m.retries.WithLabelValues(revision),
	}
	for i, p := range phases {
		rm.coldStartPhase[i] = m.coldPhase.WithLabelValues(revision, p)
	}
	return rm
}
