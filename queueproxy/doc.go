// Package queueproxy is the per-instance proxy that sits in front of one
// app instance, Knative's queue-proxy as a library: a concurrency
// Breaker with a bounded queue (also reused by the activator),
// time-weighted concurrency stats reported every second, readiness
// probing of the app, request timeouts, graceful drain, and hygiene of
// the internal headers shared with the activator.
//
// A Proxy is an http.Handler; cmd/queue-proxy runs one as a sidecar.
package queueproxy
