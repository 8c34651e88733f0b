// Command queue-proxy runs the zeroscale queue-proxy as a sidecar in
// front of one app instance (Docker, Kubernetes): a concurrency breaker
// with a bounded queue, per-second stats for the autoscaler, readiness
// probing, request timeouts and a graceful drain on SIGTERM.
//
// Every flag can also be set by an environment variable (shown in
// -help); a flag given on the command line wins. Durations accept Go
// syntax ("90s") or, for Knative compatibility, plain seconds ("300").
//
//	queue-proxy -user-port 8080 -serving-port 8012 -metrics-port 9090 -container-concurrency 10
//
// The serving port speaks HTTP/1.1 and h2c. The metrics port serves the
// latest stat at /zeroscale/stat (JSON, for the autoscaler's scraper)
// and Prometheus metrics at /metrics. On SIGTERM or SIGINT health checks
// turn 503 at once, requests keep being served, and the process exits
// once every in-flight request is done (at most -drain-timeout).
package main
