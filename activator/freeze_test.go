package activator

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroscale/zeroscale/backend"
)

// TestHeldForThawIsNotAColdStart: a request held while the revision's
// instance is frozen waits for the thaw without counting, or being
// labelled, as a cold start.
func TestHeldForThawIsNotAColdStart(t *testing.T) {
	e := newEnv(t, 0, nil)
	a := newUpstream(t, "a", false)
	frozen := a.instance(true)
	frozen.Frozen = true
	require.NoError(t, e.h.UpdateInstances(rev, []backend.Instance{frozen}))

	res := e.get(t)
	e.waitHeld(t, 1)
	assert.Equal(t, 1.0, e.nextReport(t).AverageConcurrency, "the held request is demand: the autoscaler is poked")
	require.NoError(t, e.h.UpdateInstances(rev, []backend.Instance{a.instance(true)})) // thawed
	r := wait(t, res)
	assert.Equal(t, http.StatusOK, r.code)
	assert.Equal(t, "ok a ", r.body)
	assert.Empty(t, r.header.Get(ColdStartHeader))
	assert.Zero(t, e.counter("coldStarts", rev))
}
