package queueproxy

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
	// HealthPath is where a queue-proxy answers readiness: 200 "ready",
	// 503 "not ready" or 503 "draining".
	HealthPath = "/zeroscale/health"
)
