// Package autoscaler decides how many instances each revision should run,
// with Knative's KPA algorithm, and is usable piece by piece:
//
//   - Config: the host's autoscaling configuration (Knative's
//     config-autoscaler, DefaultConfig), validated once by Validate;
//     Config.Resolve combines it with a revision.Spec's own settings
//     into the ScalingParams everything below runs on;
//   - aggregation: the metric windows (linear, weighted-exponential, max);
//   - Decider and KPA: one decision from observed values, a plain value
//     with explicit state, no goroutines, no clock;
//   - Multiscaler: the per-revision loop on an injected clock (2 s tick,
//     Poke fast path), min/max/initial scale, the scale-to-zero state
//     machine, publishing each Decision to the host's Publisher, stats in
//     (pushed through Reporter, or scraped over HTTP) into per-revision
//     windows, and Prometheus collectors under zeroscale_autoscaler_.
//
// It never calls a backend: the host turns Decisions into backend.Scale
// calls, feeds each revision with Set and its instances with
// SetInstances (package control does all three).
//
// The extension points are named types: a DeciderFactory
// (Options.NewDecider) supplies another scaling policy, and a Decider
// that is also a DeciderUpdater takes new parameters in place instead of
// being rebuilt; an IdleChecker (Options.IdleCheck) may keep a revision
// from going to zero; the Publisher receives the decisions.
package autoscaler
