package autoscaler

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics exports every revision's state at scrape time: nothing is
// updated on the hot path and a revision costs no series memory between
// scrapes (the kube-state-metrics pattern).
type metrics struct {
	m *Multiscaler

	desired, scale, serving, stable, panicV, target, threshold, panicMode, ebc, decisions, scrapes, scrapeErrs *prometheus.Desc
}

func newMetrics(m *Multiscaler) *metrics {
	const ns = "zeroscale_autoscaler_"
	rev := []string{"revision"}
	revMetric := []string{"revision", "metric"}
	return &metrics{
		m:          m,
		desired:    prometheus.NewDesc(ns+"desired_instances", "Instances the decider wants, before min/max scale and scale to zero (-1 unknown).", rev, nil),
		scale:      prometheus.NewDesc(ns+"requested_instances", "Instances the revision was last asked to run (Decision.Scale).", rev, nil),
		serving:    prometheus.NewDesc(ns+"serving_instances", "Instances that take requests (backend.Instance.Serving), as the host reported them.", rev, nil),
		stable:     prometheus.NewDesc(ns+"stable_value", "The scaling metric averaged over the stable window.", revMetric, nil),
		panicV:     prometheus.NewDesc(ns+"panic_value", "The scaling metric averaged over the panic window.", revMetric, nil),
		target:     prometheus.NewDesc(ns+"target_value", "The per-instance target of the scaling metric.", revMetric, nil),
		threshold:  prometheus.NewDesc(ns+"panic_threshold", "Panic mode starts when the panic-window value reaches this many times target × serving instances (Knative's panic-threshold-percentage / 100).", rev, nil),
		panicMode:  prometheus.NewDesc(ns+"panic_mode", "1 while the decider is in panic mode.", rev, nil),
		ebc:        prometheus.NewDesc(ns+"excess_burst_capacity", "Excess burst capacity; negative keeps the activator in the path.", rev, nil),
		decisions:  prometheus.NewDesc(ns+"decisions_total", "Decisions made (ticks and pokes with data).", rev, nil),
		scrapes:    prometheus.NewDesc(ns+"scrapes_total", "Scrapes of the revision's instances.", rev, nil),
		scrapeErrs: prometheus.NewDesc(ns+"scrape_errors_total", "Scrapes that recorded nothing because too few instances answered.", rev, nil),
	}
}

func (x *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{x.desired, x.scale, x.serving, x.stable, x.panicV, x.target, x.threshold, x.panicMode, x.ebc, x.decisions, x.scrapes, x.scrapeErrs} {
		ch <- d
	}
}

func (x *metrics) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	x.m.mu.Lock()
	defer x.m.mu.Unlock()
	for name, s := range x.m.revs {
		metric := string(s.params.Metric)
		gauge(x.desired, float64(s.rec.DesiredScale), name)
		gauge(x.scale, float64(s.scale), name)
		gauge(x.serving, float64(s.serving), name)
		gauge(x.stable, s.stable, name, metric)
		gauge(x.panicV, s.panic, name, metric)
		gauge(x.target, s.params.TargetValue, name, metric)
		gauge(x.threshold, s.params.PanicThreshold, name)
		panicking := 0.0
		if s.rec.Panicking {
			panicking = 1
		}
		gauge(x.panicMode, panicking, name)
		gauge(x.ebc, float64(s.rec.ExcessBurstCapacity), name)
		counter(x.decisions, s.decisions, name)
		counter(x.scrapes, s.col.scrapes.Load(), name)
		counter(x.scrapeErrs, s.col.scrapeErrs.Load(), name)
	}
}
