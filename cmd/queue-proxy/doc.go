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
// The serving port speaks HTTP/1.1 and h2c; its /zeroscale/ paths are
// the queue-proxy's own (health, and the latest stat at /zeroscale/stat
// so an autoscaler knowing only the instance's address can scrape it).
// The metrics port serves the latest stat at /zeroscale/stat (JSON, for
// the autoscaler's scraper), Prometheus metrics at /metrics, and
// /zeroscale/wait-for-drain, which answers once the queue-proxy drained
// after SIGTERM (the app container's preStop hook on Kubernetes).
//
// On SIGTERM or SIGINT it drains as Knative's queue-proxy does: health
// checks answer 503 at once, requests keep being served, and once no
// request has arrived for -drain-quiet-period (default 30 s, restarted by
// each request; endpoint removal in Kubernetes lags the signal by
// seconds) and none is in flight the process exits, at most
// -drain-timeout after the signal. WebSockets get -upgrade-drain-limit
// after the quiet period. -drain-quiet-period 0 exits as soon as nothing
// is in flight, which is safe only when nothing but the zeroscale
// activator routes here.
package main
