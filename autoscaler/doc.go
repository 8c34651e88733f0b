// Package autoscaler decides how many instances each revision should run,
// with Knative's KPA algorithm, and is usable piece by piece:
//
//   - aggregation: the metric windows (linear, weighted-exponential, max);
//   - Collector: stats in, pushed (stats.Reporter) or scraped over HTTP,
//     into per-revision windows;
//   - Decider and KPA: one decision from observed values, a plain value
//     with explicit state, no goroutines, no clock;
//   - Multiscaler: the per-revision loop on an injected clock (2 s tick,
//     Poke fast path), min/max/initial scale, the scale-to-zero state
//     machine, publishing each Decision to the host's Publisher, and
//     Prometheus collectors under zeroscale_autoscaler_.
//
// It never calls a backend: the host turns Decisions into backend.Scale
// calls and feeds ready instances back with SetInstances or SetReady.
package autoscaler
