// Package aggregation holds the time windows the autoscaler averages its
// metrics over, with Knative's exact semantics:
//
//   - Linear: 1-second buckets averaged arithmetically (Knative's
//     TimedFloat64Buckets), the default;
//   - WeightedExponential: the same buckets with exponentially decaying
//     weights (metric-aggregation-algorithm: weighted-exponential);
//   - Max: a sliding maximum over coarser buckets (the scale-down delay).
//
// The windows are plain values without locks or goroutines: a caller that
// shares one between goroutines serialises access itself. Each window
// allocates its ring once, at construction (or resize), and never again.
package aggregation
