package e2e_test

import (
	"context"
	"testing"
	"time"

	"github.com/zeroscale/zeroscale"
	"github.com/zeroscale/zeroscale/revision"
)

// TestFrozenStandby: on real processes, a revision with idle-mode
// freeze is frozen (SIGSTOP of its process group) once idle instead of
// stopped, the next request thaws the same instance (no start, no cold
// start), and once frozen for its standby retention it is stopped.
func TestFrozenStandby(t *testing.T) {
	h := newHarness(t, zeroConfig(), 4)
	frozenScenario(t, h, "frz", appSpec(t), "process")
}

// TestDockerFrozenStandby is TestFrozenStandby on Docker (pause and
// unpause).
func TestDockerFrozenStandby(t *testing.T) {
	h, spec := newDockerHarness(t, zeroConfig(), 4)
	frozenScenario(t, h, "dfrz", spec, "docker")
}

// frozenScenario runs the frozen standby's life on h's engine and logs
// its numbers, labelled engine.
func frozenScenario(t *testing.T, h *harness, name string, spec revision.Spec, engine string) {
	t.Helper()
	const retention = 10 * time.Second
	rev := name + "-00001"
	spec.Scaling.IdleMode = revision.IdleModeFreeze
	spec.Scaling.StandbyRetention = new(retention)
	h.apply(zeroscale.ServiceSpec{Name: name, Template: spec})
	is := func(kind zeroscale.EventKind, after time.Time) func(zeroscale.Event) bool {
		return func(e zeroscale.Event) bool { return e.Kind == kind && e.Revision == rev && !e.Time.Before(after) }
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	if r := h.get(ctx, name, "/rev"); !r.ok() || r.body != rev+"\n" {
		t.Fatalf("first request (a cold start): %v", r)
	}
	var warm []time.Duration
	for range 20 {
		r := h.get(ctx, name, "/rev")
		if !r.ok() {
			t.Fatalf("warm request: %v", r)
		}
		warm = append(warm, r.ttfb)
	}

	idle := time.Now()
	frozen := h.waitEvent(2*time.Minute, "frozen when idle", is(zeroscale.EventFrozen, idle))
	h.waitRevision(time.Minute, name, "frozen, its instance kept", func(r zeroscale.RevisionStatus) bool {
		return r.Name == rev && r.Frozen && r.Instances == 1 && r.ActualScale == 0
	})

	thawAt := time.Now()
	r := h.get(ctx, name, "/rev")
	if !r.ok() || r.body != rev+"\n" {
		t.Fatalf("request to the frozen revision: %v", r)
	}
	thawed := h.waitEvent(time.Minute, "thawed by the request", is(zeroscale.EventThawed, thawAt))
	h.waitRevision(time.Minute, name, "serving again on the same instance", func(r zeroscale.RevisionStatus) bool {
		return r.Name == rev && !r.Frozen && r.Instances == 1 && r.ActualScale == 1
	})
	h.mu.Lock()
	for _, e := range h.events {
		if e.Kind == zeroscale.EventScaled && e.Revision == rev && e.Time.After(frozen.Time) && e.ColdStart > 0 {
			t.Errorf("a cold start after the freeze (%s): the thaw must not start an instance", e)
		}
	}
	h.mu.Unlock()

	// Frozen again; stopped for real once the retention passes.
	again := h.waitEvent(2*time.Minute, "frozen again", is(zeroscale.EventFrozen, thawed.Time))
	expired := h.waitEvent(time.Minute, "stopped after the standby retention", is(zeroscale.EventStandbyExpired, again.Time))
	if d := expired.Time.Sub(again.Time); d < retention {
		t.Errorf("stopped %v after the freeze, before the %v retention", d, retention)
	}
	h.waitRevision(time.Minute, name, "no instance left", func(r zeroscale.RevisionStatus) bool {
		return r.Name == rev && !r.Frozen && r.Instances == 0
	})
	if r := h.get(ctx, name, "/rev"); !r.ok() {
		t.Fatalf("request after the standby expired (a cold start): %v", r)
	}
	t.Logf("E2E frozen standby (%s): first byte after a thaw %s vs warm p50 %s (p95 %s); %s; %s; stopped %s after the freeze (retention %s)",
		engine, ms(r.ttfb), ms(percentile(warm, 50)), ms(percentile(warm, 95)), frozen.Message, thawed.Message,
		ms(expired.Time.Sub(again.Time)), retention)
}
