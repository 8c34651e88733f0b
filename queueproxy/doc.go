// Package queueproxy is the per-instance proxy that sits in front of one
// app instance, Knative's queue-proxy as a library: a concurrency
// breaker with a bounded queue (internal/breaker),
// time-weighted concurrency stats reported every second, readiness
// probing of the app, request timeouts, graceful drain, and hygiene of
// the internal headers shared with the activator. cmd/queue-proxy runs
// one as a sidecar.
//
// A Proxy (New) is an http.Handler. Run drives the 1 s stats periods
// and the readiness probing; MetricsHandler serves the latest
// stats.Stat at stats.Path for scraping (and Prometheus metrics); Drain
// stops it gracefully. Serve it on a server that also accepts h2c
// (HTTP/2 without TLS), as gRPC clients need; cmd/queue-proxy does.
//
// Trust: the activator is recognised by a shared secret in an internal
// header (Options.ActivatorSecret), compared in constant time. Only such
// requests count as proxied in the stats and may restore the client's
// Host or send a probe; from anyone else the internal headers are
// dropped, and they never reach the app.
// Transport security between activator and queue-proxy (mTLS) is left
// to the host's listener and network.
//
// Costs: the request path takes no lock shared by all requests (stats
// and breaker are atomics), starts no goroutine (timeouts are one
// runtime timer per request), and does nothing for metrics or tracing
// unless a Registerer or TracerProvider is given.
package queueproxy
