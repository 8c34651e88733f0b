package process

import (
	"context"
	"net/http"

	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/revision"
)

// Proxy fronts one instance when Options.Proxy is set; a
// *queueproxy.Proxy is one. The backend serves it (HTTP/1.1 and h2c) on
// a loopback listener of its own, which becomes the instance's Address.
type Proxy interface {
	http.Handler
	// Drain makes the proxy refuse new work and returns once no request
	// is in flight, or when ctx is done.
	Drain(ctx context.Context) error
}

// Prober is implemented by a Proxy that checks its app's readiness
// itself. The backend then asks the proxy instead of probing the app
// directly, so "ready" means the same to the backend and to the proxy.
type Prober interface {
	// Probe runs one readiness check and returns nil if the app is
	// ready.
	Probe(ctx context.Context) error
}

// ProxyFunc builds the proxy for inst (its ID, revision and Started are
// set; Address is the proxy's own). target is the app's host:port; it
// stays the same across restarts of the instance. It is called once per
// instance, before its first start.
type ProxyFunc func(inst backend.Instance, target string, spec revision.Spec) (Proxy, error)
