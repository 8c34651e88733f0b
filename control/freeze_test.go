package control_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/backend/fake"
	"github.com/zeroscale/zeroscale/control"
	"github.com/zeroscale/zeroscale/revision"
)

func (e *env) freezingRevision(name string, retention time.Duration) revision.Revision {
	e.t.Helper()
	r, err := revision.New("hello", name, 1, revision.Spec{
		Image:   "example.com/hello",
		Scaling: revision.Scaling{IdleMode: revision.IdleModeFreeze, StandbyRetention: new(retention)},
	}, e.clk.Now())
	require.NoError(e.t, err)
	return r
}

// stepUntil steps the fake clock a second at a time, at most limit,
// until cond holds.
func (e *env) stepUntil(cond func() bool, limit time.Duration, msg string) {
	e.t.Helper()
	var stepped time.Duration
	require.Eventually(e.t, func() bool {
		if cond() {
			return true
		}
		if stepped < limit {
			e.clk.Step(time.Second)
			stepped += time.Second
		}
		return false
	}, waitFor, time.Millisecond, msg)
}

// TestFreezeInsteadOfZero: an idle freeze-mode revision is frozen, not
// scaled to zero; a request thaws the same instance (no start, no cold
// start); frozen again, it is stopped once the standby retention passes.
func TestFreezeInsteadOfZero(t *testing.T) {
	e := newEnv(t, fake.Options{}, nil)
	r := e.freezingRevision("hello-00001", 5*time.Minute)
	require.NoError(t, e.ctl.Add(t.Context(), r))
	e.atZero(r.Name())
	code, _ := e.get(r.Name())
	require.Equal(t, http.StatusOK, code)
	first, err := e.engine.Instances(r.Name())
	require.NoError(t, err)
	require.Len(t, first, 1)

	e.stepUntil(func() bool { return e.status(r.Name()).Frozen }, 10*time.Minute, "frozen when idle")
	require.Eventually(t, func() bool { return len(e.eventsOf(control.EventFrozen)) == 1 }, waitFor, time.Millisecond)
	assert.Equal(t, 1, e.eventsOf(control.EventFrozen)[0].From)
	snap, err := e.engine.Instances(r.Name())
	require.NoError(t, err)
	require.Len(t, snap, 1)
	assert.Equal(t, first[0].ID, snap[0].ID)
	assert.True(t, snap[0].Frozen)
	st := e.status(r.Name())
	assert.Equal(t, 0, st.Decision.Scale, "the autoscaler decided zero")
	assert.Equal(t, 1, st.Applied, "the engine was never scaled to zero")
	assert.Zero(t, st.Serving)

	code, body := e.get(r.Name()) // held for the thaw only
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, "hello-00001\n", body)
	require.Eventually(t, func() bool { return len(e.eventsOf(control.EventThawed)) == 1 }, waitFor, time.Millisecond)
	snap, err = e.engine.Instances(r.Name())
	require.NoError(t, err)
	require.Len(t, snap, 1)
	assert.Equal(t, first[0].ID, snap[0].ID, "the frozen instance serves: none started")
	assert.False(t, snap[0].Frozen)
	assert.False(t, e.status(r.Name()).Frozen)
	for _, ev := range e.eventsOf(control.EventScaled) {
		if ev.Time.After(e.eventsOf(control.EventFrozen)[0].Time) {
			assert.Zero(t, ev.ColdStart, "a thaw is not a cold start: %v", ev)
		}
	}
	freezes, thaws := e.engine.Freezes()
	assert.Equal(t, 1, freezes)
	assert.Equal(t, 1, thaws)

	e.stepUntil(func() bool { return len(e.eventsOf(control.EventFrozen)) == 2 }, 10*time.Minute, "frozen again")
	frozenAt := e.eventsOf(control.EventFrozen)[1].Time
	e.stepUntil(func() bool { return e.status(r.Name()).Applied == 0 }, 10*time.Minute, "stopped after the retention")
	expired := e.eventsOf(control.EventStandbyExpired)
	require.Len(t, expired, 1)
	assert.GreaterOrEqual(t, expired[0].Time.Sub(frozenAt), 5*time.Minute)
	assert.False(t, e.status(r.Name()).Frozen)
	require.Eventually(t, func() bool {
		snap, err := e.engine.Instances(r.Name())
		return err == nil && len(snap) == 0
	}, waitFor, time.Millisecond, "the frozen instance stopped")

	// From zero again: an ordinary start.
	code, _ = e.get(r.Name())
	require.Equal(t, http.StatusOK, code)
	assert.Len(t, e.eventsOf(control.EventThawed), 1)
}

// noFreezer hides the fake's backend.Freezer, as an engine that cannot
// freeze (Kubernetes).
type noFreezer struct{ backend.Backend }

func TestFreezeRefusedByAnEngineThatCannot(t *testing.T) {
	e := newEnv(t, fake.Options{}, func(b *fake.Backend) backend.Backend { return noFreezer{b} })
	r := e.freezingRevision("hello-00001", time.Minute)
	err := e.ctl.Add(t.Context(), r)
	require.ErrorIs(t, err, control.ErrCannotFreeze)
	require.ErrorIs(t, err, backend.ErrInvalidArgument)
	assert.ErrorContains(t, err, revision.IdleModeAnnotation)
	assert.ErrorContains(t, err, "cannot freeze")
	assert.Empty(t, e.ctl.Revisions())
	_, err = e.engine.Desired(r.Name())
	require.ErrorIs(t, err, backend.ErrNotDeployed, "nothing deployed")
}
