package queueproxy

import (
	"cmp"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"k8s.io/utils/clock"

	"github.com/zeroscale/zeroscale/internal/bounds"
	"github.com/zeroscale/zeroscale/internal/breaker"
	"github.com/zeroscale/zeroscale/revision"
	"github.com/zeroscale/zeroscale/stats"
)

// Defaults of Options fields.
const (
	// DefaultStartupProbeLimit bounds the aggressive (every
	// revision.AggressiveProbePeriod) probing from start, Knative's 10 s.
	DefaultStartupProbeLimit = 10 * time.Second
	// DefaultUpgradeDrainLimit is how long Drain waits for upgraded
	// (hijacked) connections such as WebSockets before closing them,
	// Knative's 60 s.
	DefaultUpgradeDrainLimit = 60 * time.Second
	// DefaultDrainQuietPeriod is how long Drain keeps serving after the
	// last request arrived before it may return, Knative's 30 s: behind
	// a load balancer that learns of the drain late (Kubernetes
	// endpoints lag the termination signal by seconds) requests keep
	// coming for a while.
	DefaultDrainQuietPeriod = 30 * time.Second
	// MaxQueueDepth bounds Options.QueueDepth.
	MaxQueueDepth = 1 << 20
	// ReportingPeriod is how often a Stat is produced.
	ReportingPeriod = time.Second
	// unlimitedIdleConns sizes the upstream idle pool when the
	// container concurrency is unlimited (Knative's pool size).
	unlimitedIdleConns = 1000
)

// Options configure a Proxy. Only Upstream is required; every other zero
// value means the documented default.
type Options struct {
	// Upstream is the app's host:port, e.g. "127.0.0.1:8080".
	Upstream string
	// Revision and Instance name this proxy in the Stats it reports
	// (Revision is the Reporter's key, Instance is Stat.Instance) and
	// in metric labels.
	Revision string
	Instance string
	// ContainerConcurrency is the most requests the app runs at once;
	// 0 means unlimited (no breaker). 0 to
	// revision.MaxContainerConcurrency.
	ContainerConcurrency int
	// QueueDepth is how many requests may wait beyond
	// ContainerConcurrency; 0 means 10 × ContainerConcurrency, at most
	// MaxQueueDepth. Ignored when ContainerConcurrency is 0.
	QueueDepth int
	// Protocol is what the app speaks (revision.Spec.Protocol):
	// revision.ProtocolH2C, or HTTP/1.1 for anything else. Requests
	// reach the app in it whatever the client speaks.
	Protocol string
	// Timeouts bound each request; zero fields take revision's
	// defaults (request 300 s, response start = request, idle off).
	Timeouts revision.Timeouts
	// Readiness says how the app is probed (TCP connect to Upstream
	// by default).
	Readiness revision.Probe
	// StartupProbeLimit bounds aggressive probing from Run's start;
	// after it, probes run only on demand. 0 means
	// DefaultStartupProbeLimit.
	StartupProbeLimit time.Duration
	// UpgradeDrainLimit is how long Drain waits for upgraded
	// connections (WebSockets) before closing them. 0 means
	// DefaultUpgradeDrainLimit.
	UpgradeDrainLimit time.Duration
	// DrainQuietPeriod is how long Drain waits with no new request
	// arriving (the wait restarts on each one) before it returns. 0
	// means DefaultDrainQuietPeriod; a negative value means none, so
	// Drain returns as soon as nothing is in flight. None is safe only
	// when whatever routes here has stopped picking this instance
	// before Drain, as the activator's WaitInstanceIdle guarantees for
	// an in-process proxy.
	DrainQuietPeriod time.Duration
	// Reporter receives each period's Stat in-process; nil means only
	// MetricsHandler serves it.
	Reporter stats.Reporter
	// ActivatorSecret is the shared secret the trusted activator sends
	// in an internal header (activator.Options.Secret). Requests with the matching value (compared in
	// constant time) count as proxied and may carry the other internal
	// headers; from anyone else those headers are dropped. "" trusts
	// nobody.
	ActivatorSecret string
	// Clock drives stats periods, probing and timeouts; nil means the
	// real clock.
	Clock clock.WithTickerAndDelayedExecution
	// Logger receives operational logs; nil discards them.
	Logger *slog.Logger
	// Registerer receives the zeroscale_queueproxy_* metrics; nil
	// means no metrics (and no cost). If it is also a
	// prometheus.Gatherer (a *prometheus.Registry), MetricsHandler
	// serves it at /metrics.
	Registerer prometheus.Registerer
	// TracerProvider traces each hop; nil means no tracing (and no
	// cost). Propagator, if set, extracts the parent span from the
	// request and injects the hop's span into the upstream request.
	TracerProvider trace.TracerProvider
	Propagator     propagation.TextMapPropagator
}

// timeouts are the effective, validated timeouts.
type timeouts struct {
	request, responseStart, idle time.Duration
}

func (o *Options) validate() (timeouts, error) {
	var t timeouts
	if _, _, err := net.SplitHostPort(o.Upstream); err != nil {
		return t, fmt.Errorf("queueproxy: Options.Upstream = %q, want host:port: %w", o.Upstream, err)
	}
	if !bounds.ContainerConcurrency(o.ContainerConcurrency) {
		return t, fmt.Errorf("queueproxy: Options.ContainerConcurrency = %d, want 0 (unlimited) to %d", o.ContainerConcurrency, revision.MaxContainerConcurrency)
	}
	if o.QueueDepth < 0 || o.QueueDepth > MaxQueueDepth {
		return t, fmt.Errorf("queueproxy: Options.QueueDepth = %d, want 0 (= %d × ContainerConcurrency) to %d", o.QueueDepth, breaker.DefaultQueueDepthFactor, MaxQueueDepth)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
		max  time.Duration
	}{
		{"Timeouts.Request", o.Timeouts.Request, revision.MaxRequestTimeout},
		{"Timeouts.ResponseStart", o.Timeouts.ResponseStart, revision.MaxRequestTimeout},
		{"Timeouts.Idle", o.Timeouts.Idle, revision.MaxRequestTimeout},
		{"Readiness.Period", o.Readiness.Period, time.Hour},
		{"Readiness.Timeout", o.Readiness.Timeout, time.Hour},
		{"StartupProbeLimit", o.StartupProbeLimit, time.Hour},
		{"UpgradeDrainLimit", o.UpgradeDrainLimit, 24 * time.Hour},
	} {
		if d.v < 0 || d.v > d.max {
			return t, fmt.Errorf("queueproxy: Options.%s = %v, want 0 (default) to %v", d.name, d.v, d.max)
		}
	}
	if o.DrainQuietPeriod > time.Hour {
		return t, fmt.Errorf("queueproxy: Options.DrainQuietPeriod = %v, want negative (none), 0 (default %v) or up to %v", o.DrainQuietPeriod, DefaultDrainQuietPeriod, time.Hour)
	}
	if p := o.Readiness.HTTPPath; p != "" && p[0] != '/' {
		return t, fmt.Errorf("queueproxy: Options.Readiness.HTTPPath = %q, want a path starting with /", p)
	}
	t.request = cmp.Or(o.Timeouts.Request, revision.DefaultRequestTimeout)
	t.responseStart = cmp.Or(o.Timeouts.ResponseStart, t.request)
	if t.responseStart > t.request {
		return t, fmt.Errorf("queueproxy: Options.Timeouts.ResponseStart = %v, want at most Timeouts.Request (%v)", t.responseStart, t.request)
	}
	t.idle = o.Timeouts.Idle
	return t, nil
}
