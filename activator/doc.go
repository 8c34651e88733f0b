// Package activator is zeroscale's front door: an http.Handler that
// routes each request to a revision (through a RevisionPicker such as a
// traffic.Route), holds it in a bounded per-revision queue while the
// revision has no free slot — at zero, or with every instance at its
// container concurrency — reports that demand to the autoscaler at once,
// and proxies it to a ready instance as soon as one has room.
//
// It owns per-revision throttling (slots = container concurrency × ready
// instances, released to held requests in FIFO order so that a new
// instance never gets more than its concurrency at once), Knative's
// load-balancing policies behind the Policy interface, the wait deadline
// (Cloud Run's max(3.5 × average start-up, 10 s), capped by the
// revision's request timeout), the 503 or custom answer when a request
// cannot be held or waited too long, forwarding (trusted activator
// header, original Host kept, W3C trace context, one retry of idempotent
// requests that could not connect), its demand reports (stats.Reporter)
// and its zeroscale_activator_ metrics and spans. A request held at zero
// is traced and measured as a cold start, one span and histogram series
// per phase (PhaseScaleDecision … PhaseFirstByte), from the milestones
// the host reports: ScaleFromZero, and the instance's Started and
// Listening.
//
// The host tells it about revisions (SetRevision, RemoveRevision) and
// their instances (UpdateInstances, fed from backend.Watch). Like
// Knative's activator it probes an instance the backend does not yet
// report ready itself (its queue-proxy's health, every 200 ms with a
// 300 ms timeout) and sends it requests as soon as it answers, takes it
// out when it stops answering and probes on, until the backend reports
// it ready or draining. The host runs Run for the periodic reports;
// before stopping an instance it calls
// WaitInstanceIdle, which returns once the activator sends the instance
// nothing new and every request it sent there has finished. Requests
// reach instances in the revision's protocol (Spec.Protocol), whatever
// the client speaks: h2c for "h2c" revisions (gRPC), else HTTP/1.1.
// Request timeouts once a request reaches an instance are the
// queue-proxy's job.
package activator
