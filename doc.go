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
package zeroscale
