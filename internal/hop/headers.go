// Package hop is the plumbing of one proxy hop that the activator and the
// queue-proxy share: the upstream transport (HTTP/1.1, or h2c for an h2c
// app), the pooled copy buffers, X-Forwarded/Forwarded handling,
// the internal headers between activator and queue-proxy, and the
// HTTP/1.1 + h2c server. Not public API.
package hop

// Internal headers between the activator and a queue-proxy. A queue-proxy
// honours them only on requests that carry ActivatorHeader with the
// shared secret it was configured with, and strips all of them before the
// request reaches the app, so a client cannot spoof proxied accounting,
// routing or probes.
const (
	// ActivatorHeader carries the shared secret; its presence with the
	// right value marks the request as proxied by a trusted activator.
	ActivatorHeader = "Zeroscale-Activator"
	// OriginalHostHeader carries the Host the client used, restored by
	// the queue-proxy when the activator rewrote it.
	OriginalHostHeader = "Zeroscale-Original-Host"
	// RevisionHeader names the revision the activator routed to.
	RevisionHeader = "Zeroscale-Revision"
	// ProbeHeader marks a readiness probe from the activator or
	// autoscaler; such requests bypass stats and the breaker. Value
	// ProbeValue.
	ProbeHeader = "Zeroscale-Probe"
	ProbeValue  = "queue"
	// ActivatorProbeValue in ProbeHeader asks the activator itself
	// (Knative's K-Network-Probe: activator), answered 200 with the
	// same body: proof that a revision's traffic reaches an activator.
	ActivatorProbeValue = "activator"
	// HealthPath is where a queue-proxy answers readiness: 200 with
	// body HealthReady, or 503 with HealthNotReady or HealthDraining.
	HealthPath     = "/zeroscale/health"
	HealthReady    = "ready"
	HealthNotReady = "not ready"
	HealthDraining = "draining"
	// IdleCheckHeader asks the queue-proxy to GET the path it carries on
	// the app, outside stats and breaker, and answer with the app's
	// verdict (queueproxy.Proxy.CheckIdle): the idle check before scale
	// to zero, which must not itself count as a request.
	IdleCheckHeader = "Zeroscale-Idle-Check"
	// WaitForDrainPath is where a queue-proxy sidecar, on its metrics
	// port, answers once it has drained: the Kubernetes backend's preStop
	// hook of the user container waits on it.
	WaitForDrainPath = "/zeroscale/wait-for-drain"
)
