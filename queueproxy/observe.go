package queueproxy

import (
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/zeroscale/zeroscale/internal/hop"
)

const metricsNamespace = "zeroscale_queueproxy"

// metrics are the Prometheus metrics of one Proxy. Series per status
// code are resolved once and cached, so the hot path is two atomic adds
// and a histogram observation.
type metrics struct {
	requests *prometheus.CounterVec
	byCode   [600]atomic.Pointer[prometheus.Counter]
	latency  prometheus.Histogram
	gatherer prometheus.Gatherer
}

func newMetrics(o Options, p *Proxy) (*metrics, error) {
	labels := prometheus.Labels{}
	if o.Revision != "" {
		labels["revision"] = o.Revision
	}
	if o.Instance != "" {
		labels["instance"] = o.Instance
	}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: metricsNamespace, Name: "requests_total", ConstLabels: labels,
			Help: "Requests proxied (health checks excluded), by response status code.",
		}, []string{"code"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: metricsNamespace, Name: "request_duration_seconds", ConstLabels: labels,
			Help:    "Time from arrival to the end of the response, queueing included.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 18),
		}),
	}
	gauges := []prometheus.Collector{
		m.requests, m.latency,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: metricsNamespace, Name: "concurrency", ConstLabels: labels,
			Help: "Requests in flight, queued ones included.",
		}, func() float64 { return float64(p.stats.inFlight()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: metricsNamespace, Name: "queue_depth", ConstLabels: labels,
			Help: "Requests waiting in the breaker's queue for capacity.",
		}, func() float64 { return float64(p.breaker.Pending() - p.breaker.InFlight()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: metricsNamespace, Name: "breaker_capacity", ConstLabels: labels,
			Help: "Requests the breaker lets run at once (0: unlimited).",
		}, func() float64 { return float64(p.breaker.Capacity()) }),
	}
	for _, c := range gauges {
		if err := o.Registerer.Register(c); err != nil {
			return nil, fmt.Errorf("queueproxy: register metrics: %w", err)
		}
	}
	m.gatherer, _ = o.Registerer.(prometheus.Gatherer)
	return m, nil
}

func (m *metrics) observe(code int, d time.Duration) {
	m.counter(code).Inc()
	m.latency.Observe(d.Seconds())
}

func (m *metrics) counter(code int) prometheus.Counter {
	if code < 0 || code >= len(m.byCode) {
		return m.requests.WithLabelValues(strconv.Itoa(code))
	}
	if c := m.byCode[code].Load(); c != nil {
		return *c
	}
	c := m.requests.WithLabelValues(strconv.Itoa(code))
	m.byCode[code].Store(&c)
	return c
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.gatherer, promhttp.HandlerOpts{})
}

// attrQueueWait is the span attribute holding the time a request waited
// for the breaker, in seconds.
var attrQueueWait = attribute.Key("zeroscale.queue.wait_seconds")

// startSpan starts the hop's server span, parented by the incoming trace
// context when a Propagator is set, and injects the span into the
// request headers for the app.
func (p *Proxy) startSpan(ex *exchange, r *http.Request) {
	ctx := ex.ctx
	local := hop.LocalOf(ctx) != nil
	if p.prop != nil && !local {
		ctx = p.prop.Extract(ctx, propagation.HeaderCarrier(r.Header))
	}
	ctx, ex.span = p.tracer.Start(ctx, "queueproxy "+r.Method,
		trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(
			attribute.String("http.request.method", r.Method),
			attribute.String("url.path", r.URL.Path),
			attribute.String("zeroscale.revision", p.opts.Revision),
			attribute.Bool("zeroscale.proxied", ex.trusted),
		))
	if p.prop != nil && !local {
		// In process the request is the client's (not ours to write);
		// rewriteLocal injects into the outgoing copy instead.
		p.prop.Inject(ctx, propagation.HeaderCarrier(r.Header))
	}
	ex.ctx = ctx
}

func endSpan(ex *exchange, cut bool) {
	ex.span.SetAttributes(attribute.Int("http.response.status_code", ex.code))
	if ex.code >= 500 || cut {
		ex.span.SetStatus(codes.Error, http.StatusText(ex.code))
	}
	ex.span.End()
}
