package process

import (
	"context"
	"net/http"

	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/internal/front"
	"github.com/zeroscale/zeroscale/queueproxy"
	"github.com/zeroscale/zeroscale/revision"
)

// Proxy fronts one instance when Options.Proxy is set; a
// *queueproxy.Proxy is one. The backend serves it (HTTP/1.1 and h2c) on
// a loopback listener of its own, which becomes the instance's Address,
// and calls Drain after Options.Drain and before the app gets SIGTERM.
type Proxy interface {
	http.Handler
	// Drain makes the proxy refuse new work and returns once no request
	// is in flight, or when ctx is done.
	Drain(ctx context.Context) error
}

// An instance fronted by a Proxy is ready when the proxy says so: its
// Probe method if it is a Prober, else its health check (a GET of
// queueproxy.HealthPath through ServeHTTP, in process, answered 200). The
// backend does not probe the app itself then, as Knative's kubelet asks
// only the queue-proxy; the proxy, given the revision's Spec.Readiness,
// must check the app freshly each time it is asked, so that after a
// restart it never answers from the previous run (a *queueproxy.Proxy's
// Probe does).

// Prober is implemented by a Proxy that decides readiness by a method
// rather than by answering queueproxy.HealthPath.
type Prober interface {
	// Probe checks the app now (not from a cached result) and
	// returns nil if the instance is ready.
	Probe(ctx context.Context) error
}

// Runner is implemented by a Proxy with background work (a
// *queueproxy.Proxy reports stats and probes in Run): the backend runs
// it from the proxy's creation until the instance has stopped.
type Runner interface {
	Run(ctx context.Context) error
}

// ProxyFunc builds the proxy for inst (its ID, revision and Started are
// set; Address is the proxy's own). target is the app's host:port; it
// stays the same across restarts of the instance. It is called once per
// instance, before its first start.
type ProxyFunc func(inst backend.Instance, target string, spec revision.Spec) (Proxy, error)

// QueueProxy returns a ProxyFunc that fronts every instance with a
// *queueproxy.Proxy built from base, taking Upstream, Revision, Instance,
// ContainerConcurrency, Timeouts and Readiness from the instance and its
// revision's spec. The backend runs the proxy's Run (stats reporting and
// probing) for the instance's life. With base.Registerer set, each
// instance registers its own series (labelled by revision and instance);
// they stay registered after the instance stops. A base.Logger is given
// the instance's ID.
//
// A zero base.DrainQuietPeriod means none here, not queueproxy's 30 s:
// the proxy listens on loopback only and is drained after Options.Drain,
// which (the activator's WaitInstanceIdle) stops new picks first. Set a
// positive one if something else also routes to the instances.
func QueueProxy(base queueproxy.Options) ProxyFunc {
	if base.DrainQuietPeriod == 0 {
		base.DrainQuietPeriod = -1
	}
	return func(inst backend.Instance, target string, spec revision.Spec) (Proxy, error) {
		return front.NewQueueProxy(base, inst, target, spec)
	}
}
