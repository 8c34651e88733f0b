// Package traffic decides which revision serves a request, as Knative's
// Route does: a weighted split over revisions, named tags reachable on
// their own hosts (and optionally by the Knative-Serving-Tag header),
// targets that follow a configuration's latest ready revision, and
// gradual rollout of a new revision (serving.knative.dev/rollout-duration).
//
// A Spec lists the targets and is validated with Knative's rules and
// messages. A Route resolves it against a RevisionState (Configurations
// adapts revision.Configuration), publishes the result atomically and
// answers PickRevision without locks or allocation; a Table holds many
// routes on one listener, dispatching by host, and Run drives every
// route's rollouts from one goroutine on an injected clock.
//
// Picks follow a split exactly: a 100-slot table per split, laid out by
// smooth weighted round-robin and walked by an atomic counter, so any 100
// consecutive picks match the percents.
//
// Cluster-local routes are reachable only by requests whose context was
// marked with WithClusterLocal, which the host program's internal
// listener sets; elsewhere they answer ErrNoRoute like an unknown host.
package traffic
