package e2e_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroscale/zeroscale"
	"github.com/zeroscale/zeroscale/revision"
)

// floorZone is the schedules' time zone: UTC+05:30 all year, so a
// window written in its wall-clock time is open now only if the zone
// is applied (read as UTC, or as the host's zone, it is hours off).
const floorZone = "Asia/Kolkata"

// TestScheduledFloor runs zeroscale.dev/scale-floor-schedule on real
// processes, with no request to the floored services at all:
//
//   - "open": a window open now ("* HH:MM-HH:MM Asia/Kolkata = 2")
//     scales the revision from zero to 2 instances;
//   - "prewarm": a window starting 15 minutes from now, with a lead
//     time of 30 minutes, is already in its lead: 2 instances now;
//   - "later": the same future window without a lead time: 0;
//   - "control": no schedule, one request; it goes back to zero after
//     the stable window and grace period.
//
// Once the control is at zero (the idle time that takes a revision to
// zero has passed, as a real event), the floored revisions still have
// their 2 instances and never scaled down, and "later" never started
// one.
func TestScheduledFloor(t *testing.T) {
	loc, err := time.LoadLocation(floorZone)
	require.NoError(t, err)
	now := time.Now().In(loc)
	window := func(from, to time.Time) *revision.Schedule {
		expr := fmt.Sprintf("* %s-%s %s = 2", from.Format("15:04"), to.Format("15:04"), floorZone)
		s, err := revision.ParseSchedule(expr)
		require.NoError(t, err, expr)
		return &s
	}
	open := window(now.Add(-30*time.Minute), now.Add(time.Hour))
	future := window(now.Add(15*time.Minute), now.Add(75*time.Minute))
	lead := 30 * time.Minute
	t.Logf("now %s in %s; open %s; future %s, lead %v", now.Format("Mon 15:04"), floorZone, open, future, lead)

	h := newHarness(t, zeroConfig(), 2)
	start := time.Now()
	floored := func(name string, s *revision.Schedule, lead *time.Duration) {
		spec := appSpec(t)
		spec.Scaling.FloorSchedule, spec.Scaling.FloorLeadTime = s, lead
		h.apply(zeroscale.ServiceSpec{Name: name, Template: spec})
	}
	floored("open", open, nil)
	floored("prewarm", future, &lead)
	floored("later", future, nil)
	h.apply(zeroscale.ServiceSpec{Name: "control", Template: appSpec(t)})

	ready := map[string]time.Duration{}
	for _, name := range []string{"open", "prewarm"} {
		h.waitRevision(2*time.Minute, name, "2 serving instances", func(r zeroscale.RevisionStatus) bool {
			return r.ActualScale == 2
		})
		ready[name] = time.Since(start)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := h.get(ctx, "control", "/")
	require.True(t, r.ok(), "control: %v", r)
	require.Equal(t, "control-00001\n", r.body)
	served := time.Now()
	zero := h.waitEvent(2*time.Minute, "control scaled to zero", func(e zeroscale.Event) bool {
		return e.Kind == zeroscale.EventScaled && e.Revision == "control-00001" && e.To == 0
	})

	for _, name := range []string{"open", "prewarm", "later"} {
		st, err := h.srv.ServiceStatus(name)
		require.NoError(t, err)
		require.Len(t, st.Revisions, 1)
		want := 2
		if name == "later" {
			want = 0
		}
		rs := st.Revisions[0]
		assert.Equal(t, want, rs.ActualScale, "%s: serving instances once the control is at zero", name)
		assert.Equal(t, want, rs.Instances, "%s: instances once the control is at zero", name)
	}
	h.mu.Lock()
	for _, e := range h.events {
		if e.Kind != zeroscale.EventScaled {
			continue
		}
		switch e.Service {
		case "open", "prewarm":
			assert.Less(t, e.From, e.To, "%s scaled down: %s", e.Service, e)
		case "later":
			assert.Fail(t, "later scaled", "%s", e)
		}
	}
	h.mu.Unlock()
	t.Logf("E2E floor (process): window open now (%s) → 2 serving %v after Apply; window in 15 min with lead 30m → 2 serving %v after Apply; "+
		"no lead → 0; control to zero %v after its request, floors still 2 then",
		floorZone, ready["open"].Round(time.Millisecond), ready["prewarm"].Round(time.Millisecond),
		zero.Time.Sub(served).Round(time.Millisecond))
}
