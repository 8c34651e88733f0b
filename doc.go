// Package zeroscale serves HTTP applications that scale to zero when idle
// and wake on the first request without losing it. It is Knative
// Serving's data plane and autoscaler taken apart into importable
// packages, on top of a pluggable Backend that runs the instances.
//
// The request path:
//
//	client -> activator.Handler
//	            traffic.Route picks the revision (tag host/header, else weights)
//	            per-revision throttler: a free slot on a ready instance, or
//	            wait in a bounded queue while the autoscaler is poked
//	       -> queueproxy (breaker, stats, timeouts) -> the app instance
//
// The control loop, every 2 s per revision:
//
//	stats (queue-proxy pushes or scrapes, activator demand)
//	  -> autoscaler windows (stable 60 s, panic 6 s) -> Decider (KPA)
//	  -> min/max/initial scale, scale-to-zero grace -> backend.Scale
//	backend.Watch -> ready instances -> activator capacity
//
// This package's Server wires all of it for the common case: New
// (Options' zero value runs local processes with Knative's defaults),
// Apply a ServiceSpec (a name, a revision.Spec template and traffic
// targets), Serve on a listener. Services answer at
// {{.Name}}.{{.Namespace}}.localhost (every name under localhost is the
// loopback address, no set-up needed), or at localhost/<name>/ and with
// the Zeroscale-Service header; AdminHandler serves their status as
// JSON, Options.OnEvent reports scaling as it happens, and Shutdown
// drains every request and stops every instance. ApplyKnative takes a
// Knative Service manifest instead of a ServiceSpec (package knative),
// and AdminHandler also serves Knative's serving.knative.dev/v1 API for
// services, revisions and routes, which cmd/zeroscale (kn's verbs)
// drives.
//
// Which package for which job:
//
//   - the common case, a few apps on one machine: this package's Server
//     with the process backend (backend/process);
//   - a custom control plane: control (one revision's life on any
//     backend), with activator, autoscaler, traffic, revision and a
//     backend of your choice;
//   - designing or testing a scaling policy: autoscaler with a fake clock
//     and backend/fake;
//   - a sidecar in front of an app in a container: cmd/queue-proxy;
//   - Knative manifests on one machine, without writing Go: cmd/zeroscale.
//
// # Where zeroscale knowingly differs from Knative
//
// Knative's names, defaults and answers apply unless listed here (the
// package of each difference says more):
//
//   - Stats: the queue-proxy serves its per-second stat as JSON at
//     /zeroscale/stat on its metrics port (package stats); Knative serves
//     protobuf at :9090/metrics. In process, stats are pushed instead.
//   - Hold queue (activator): bounded per revision (1000 requests and
//     32 MiB of headers and declared bodies by default); a full queue is
//     an immediate 503 with Retry-After. Knative's is effectively
//     unbounded (10 000 in a breaker of MaxInt32).
//   - Hold deadline (activator): a held request waits at most
//     max(3.5 × average start-up, 10 s) (Cloud Run's rule), then gets 503
//     with Retry-After, a capacity answer; Knative waits for the whole
//     request timeout. When the request timeout is the shorter bound its
//     passing is Knative's 504. A deadline the host set on the request (a
//     middleware) ending the wait is a 503 with Retry-After too.
//   - Request timeout of a held request: the activator bounds what is
//     left of it until the response starts (504); after that the
//     queue-proxy's timeouts govern, counted from its own arrival, so a
//     response may run up to the time held past the request timeout.
//     Knative's activator timeout handler covers the whole request.
//   - A timeout after the response started cuts the response (the
//     connection is closed or the HTTP/2 stream reset) with the status
//     already sent; Knative appends the timeout message to the body.
//   - Queue-proxy queue depth: 0 means the default, 10 × container
//     concurrency (Knative's breaker rejects a depth of 0).
//   - Internal headers: Zeroscale-Activator (a shared secret compared in
//     constant time), Zeroscale-Revision, Zeroscale-Probe and
//     Zeroscale-Original-Host instead of K-Proxy-Request,
//     Knative-Serving-Revision/-Namespace, K-Network-Probe and
//     K-Original-Host; a queue-proxy honours them only from the activator
//     holding the secret and strips them all before the app. The
//     activator keeps the client's Host, so the original-host header is
//     not needed. Health is answered at /zeroscale/health with "ready",
//     "not ready" or "draining" (Knative: "queue", "shutting down").
//   - Probe headers at the activator: only Zeroscale-Probe: activator is
//     answered (200 "activator"); other values from clients are removed
//     before forwarding rather than answered 400.
//   - Forwarded (queue-proxy): built as Knative's forwarded shim, but a
//     node or host that is not an RFC 7230 token is quoted (RFC 7239),
//     e.g. host="app.example:8080".
//   - Drain: cmd/queue-proxy keeps Knative's 30 s quiet period; the
//     Server and the process backend drain with none
//     (queueproxy.Options.DrainQuietPeriod < 0), safe because the
//     activator's WaitInstanceIdle stops new picks first. WebSockets get
//     the upgrade drain limit (60 s) counted from the end of the quiet
//     period.
//   - Activator probing: an instance whose health answer is not a
//     queue-proxy's (the app itself at its address) is probed once, then
//     left to the backend's readiness.
//   - Scale to zero: with autoscaler.Options.ActivatorProbe (Knative's
//     SKS probe) the scale-down waits for the probe at most 45 s, then
//     proceeds with a warning; Knative retries without end. The root
//     Server sets none: its activator is the only front door.
//   - Activator in path: while the desired scale is unknown (no decision
//     yet) the activator fronts the revision; Knative's SKS is in Serve
//     mode then but falls back to the activator's endpoints while the
//     revision has no ready pod, which amounts to the same.
//   - Settings: an unknown autoscaling.knative.dev/ key, both spellings of
//     one setting, NaN or ±Inf are errors (Knative ignores or accepts
//     them); TargetUtilizationPercentage ≤ 1 is a percentage, not a
//     fraction; progress-deadline is bounded at 24 h (Knative: none);
//     only the KPA class exists.
//   - One activator per host: no pod subsetting across activators, and
//     capacity is the container concurrency of every ready instance.
package zeroscale
