// Package breaker is the queue-proxy's concurrency breaker, Knative's
// queue.Breaker: a bounded number of requests run against an instance,
// a bounded number wait for it, the rest are refused at once.
package breaker
