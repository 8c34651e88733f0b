package activator

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// The phases of a cold start, each named by the milestone that ends it:
// a request is held at zero, the autoscaler decides to scale from zero
// (PhaseScaleDecision), the engine starts an instance
// (PhaseEngineStart), the app listens (PhaseAppListening), the
// instance passes its readiness probe and the activator gives the held
// request its slot (PhaseProbePassed), and the app's response starts
// (PhaseFirstByte). The phases follow each other without gaps, so their
// durations add up to the request's time to first byte at the
// activator. They label zeroscale_activator_cold_start_phase_seconds and
// name the spans zeroscale.cold_start.<phase>.
const (
	PhaseScaleDecision = "scale_decision"
	PhaseEngineStart   = "engine_start"
	PhaseAppListening  = "app_listening"
	PhaseProbePassed   = "probe_passed"
	PhaseFirstByte     = "first_byte"
)

// phases are the cold-start phases in order.
var phases = [...]string{PhaseScaleDecision, PhaseEngineStart, PhaseAppListening, PhaseProbePassed, PhaseFirstByte}

// ScaleFromZero tells the Handler when a scale of revision from zero was
// decided (an autoscaler.Decision's Time), which ends the
// scale-decision phase of the requests held meanwhile. Hosts call it
// from their autoscaler Publisher (the control package does); without
// it that phase is counted as zero and the engine-start phase begins at
// the request's arrival. Unknown revisions are ignored.
func (h *Handler) ScaleFromZero(revision string, at time.Time) {
	if t := h.lookup(revision); t != nil {
		t.mu.Lock()
		t.decided = at
		t.mu.Unlock()
	}
}

// coldStart is the milestones of one cold request: [0] held, then the
// end of each phase.
type coldStart struct {
	ctx context.Context // the request span's, parent of the phase spans; nil without tracing
	at  [len(phases) + 1]time.Time
}

// newColdStart gathers the milestones known once a request held at zero
// got its slot at assigned. The engine's are clamped into [held,
// assigned] and into order: a request that arrived after the decision
// (or the engine's start) spent none of its time in that phase, and an
// unknown milestone makes its phase empty.
func (t *throttler) newColdStart(ctx context.Context, adm admission, assigned time.Time) *coldStart {
	decided, st := t.coldMilestones(adm.slot.id)
	c := &coldStart{ctx: ctx}
	c.at[0] = adm.since
	last := adm.since
	for i, m := range []time.Time{decided, st.started, st.listening} {
		// Unknown: the phase is empty, the next one takes its time (an
		// engine that does not report Listening has app start and probe
		// in probe_passed).
		if m.IsZero() {
			m = last
		}
		m = clamp(m, last, assigned)
		c.at[i+1], last = m, m
	}
	c.at[4] = assigned
	return c
}

// record ends the cold start at the response's first byte: it observes
// the total and each phase, and traces them as spans under the request
// span.
func (h *Handler) recordColdStart(t *throttler, c *coldStart, firstByte time.Time) {
	c.at[5] = clamp(firstByte, c.at[4], firstByte)
	t.m.coldStart.Observe(c.at[5].Sub(c.at[0]).Seconds())
	for i := range phases {
		t.m.coldStartPhase[i].Observe(c.at[i+1].Sub(c.at[i]).Seconds())
	}
	if h.tracer == nil || c.ctx == nil {
		return
	}
	ctx, parent := h.tracer.Start(c.ctx, "zeroscale.cold_start", trace.WithTimestamp(c.at[0]),
		trace.WithAttributes(attribute.String("zeroscale.revision", t.name)))
	for i, p := range phases {
		_, s := h.tracer.Start(ctx, "zeroscale.cold_start."+p, trace.WithTimestamp(c.at[i]),
			trace.WithAttributes(attribute.String("zeroscale.cold_start.phase", p)))
		s.End(trace.WithTimestamp(c.at[i+1]))
	}
	parent.End(trace.WithTimestamp(c.at[5]))
}

// clamp returns m within [lo, hi] (lo when hi is before lo).
func clamp(m, lo, hi time.Time) time.Time {
	if m.After(hi) {
		m = hi
	}
	if m.Before(lo) {
		m = lo
	}
	return m
}
