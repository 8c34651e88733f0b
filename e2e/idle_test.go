package e2e_test

import (
	"context"
	"testing"
	"time"

	"github.com/zeroscale/zeroscale"
)

// TestIdleCheckEndpoint: a revision with zeroscale.dev/idle-check-path
// whose app runs a background job (no request in flight) is kept while
// its /idle says 409 and goes to zero once it says 200; asking is not
// activity (the stats stay at zero meanwhile).
func TestIdleCheckEndpoint(t *testing.T) {
	const job = 18 * time.Second // longer than the ~12 s this config takes to zero without it
	h := newHarness(t, zeroConfig(), 2)
	spec := appSpec(t)
	spec.Scaling.IdleCheckPath = "/idle"
	h.apply(zeroscale.ServiceSpec{Name: "idle", Template: spec})

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	if r := h.get(ctx, "idle", "/job?d="+job.String()); !r.ok() {
		t.Fatalf("start the job: %v", r)
	}
	busy := h.waitEvent(time.Minute, "an idle check said busy", func(e zeroscale.Event) bool {
		return e.Kind == zeroscale.EventIdleBusy && e.Revision == "idle-00001"
	})
	zero := h.waitEvent(time.Minute, "scaled to zero", func(e zeroscale.Event) bool {
		return e.Kind == zeroscale.EventScaled && e.Revision == "idle-00001" && e.To == 0
	})
	if took := zero.Time.Sub(start); took < job {
		t.Fatalf("scaled to zero %v after the job started, before it ended (%v)", took, job)
	}
	t.Logf("E2E idle check: first veto %v after the last request, to zero %v after it (job %v)",
		busy.Time.Sub(start).Round(time.Millisecond), zero.Time.Sub(start).Round(time.Millisecond), job)
}
