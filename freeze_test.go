package zeroscale_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/zeroscale/zeroscale"
	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/backend/fake"
	"github.com/zeroscale/zeroscale/control"
	"github.com/zeroscale/zeroscale/revision"
)

func freezeSpec() revision.Spec {
	return revision.Spec{Image: "x", Scaling: revision.Scaling{IdleMode: revision.IdleModeFreeze}}
}

// TestApplyRefusesFreezeOnAnEngineThatCannot: Apply names the
// annotation and changes nothing.
func TestApplyRefusesFreezeOnAnEngineThatCannot(t *testing.T) {
	srv, err := zeroscale.New(zeroscale.Options{NewBackend: func(drain backend.DrainFunc) (backend.Backend, error) {
		b, err := fake.New(fake.Options{Drain: drain})
		return struct{ backend.Backend }{b}, err // not a backend.Freezer
	}})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, srv.Shutdown(context.Background())) })
	_, err = srv.Apply(t.Context(), zeroscale.ServiceSpec{Name: "hello", Template: freezeSpec()})
	require.ErrorIs(t, err, control.ErrCannotFreeze)
	assert.ErrorContains(t, err, "zeroscale.dev/idle-mode")
	assert.ErrorContains(t, err, "cannot freeze")
	assert.Empty(t, srv.Status())
}

// TestFrozenStatusAndEvents: an idle freeze-mode service shows Frozen
// in its status and events, and a request thaws it.
func TestFrozenStatusAndEvents(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1_700_000_000, 0))
	f := newFixture(t, fake.Options{Clock: clk}, zeroCfg())
	_, err := f.srv.Apply(t.Context(), zeroscale.ServiceSpec{Name: "hello", Template: freezeSpec()})
	require.NoError(t, err)
	code, _ := f.get("hello.default.localhost", "/")
	require.Equal(t, http.StatusOK, code)
	rev := func() zeroscale.RevisionStatus {
		st, err := f.srv.ServiceStatus("hello")
		require.NoError(t, err)
		require.Len(t, st.Revisions, 1)
		return st.Revisions[0]
	}
	var stepped time.Duration
	require.Eventually(t, func() bool {
		if rev().Frozen {
			return true
		}
		if stepped < 10*time.Minute {
			clk.Step(time.Second)
			stepped += time.Second
		}
		return false
	}, 10*time.Second, time.Millisecond, "frozen when idle")
	rs := rev()
	assert.Equal(t, 1, rs.Instances)
	assert.Zero(t, rs.ActualScale)
	active, ok := rs.Condition(zeroscale.ConditionActive)
	require.True(t, ok)
	assert.Equal(t, zeroscale.ConditionFalse, active.Status)
	assert.Equal(t, zeroscale.ReasonFrozen, active.Reason)

	code, _ = f.get("hello.default.localhost", "/")
	require.Equal(t, http.StatusOK, code)
	require.Eventually(t, func() bool { return !rev().Frozen && f.has(zeroscale.EventThawed) }, 10*time.Second, time.Millisecond)
	assert.True(t, f.has(zeroscale.EventFrozen))
}

func (f *fixture) has(kind zeroscale.EventKind) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range f.events {
		if e.Kind == kind {
			return true
		}
	}
	return false
}
