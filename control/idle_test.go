package control_test

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroscale/zeroscale/autoscaler"
	"github.com/zeroscale/zeroscale/backend/fake"
	"github.com/zeroscale/zeroscale/control"
)

// TestIdleCheckHook: the embedder's hook vetoes scale to zero (an
// EventIdleBusy per veto) until it fails, which counts as idle
// (EventIdleCheckFailed) and lets the revision go to zero.
func TestIdleCheckHook(t *testing.T) {
	var verdict atomic.Int32 // 0 busy, 1 error
	var asked atomic.Int32
	e := newEnvWith(t, fake.Options{}, nil, func(o *control.Options) {
		o.Autoscaler.IdleCheck = autoscaler.IdleCheckerFunc(func(_ context.Context, rev string) (bool, error) {
			asked.Add(1)
			if verdict.Load() == 0 {
				return false, nil
			}
			return false, errors.New("job queue unreachable")
		})
	})
	r := e.revision("hello-00001", 0)
	require.NoError(t, e.ctl.Add(t.Context(), r))
	e.atZero(r.Name())
	code, _ := e.get(r.Name())
	require.Equal(t, http.StatusOK, code)

	// stepUntil steps the clock a second at a time until cond holds.
	stepUntil := func(cond func() bool, limit time.Duration, msg string) {
		var stepped time.Duration
		require.Eventually(t, func() bool {
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
	stepUntil(func() bool { return len(e.eventsOf(control.EventIdleBusy)) >= 2 }, 10*time.Minute, "two vetoes")
	assert.Equal(t, 1, e.status(r.Name()).Applied, "busy: kept at one instance")
	busy := e.eventsOf(control.EventIdleBusy)
	assert.GreaterOrEqual(t, busy[1].Time.Sub(busy[0].Time), 30*time.Second, "asked again after one grace period")

	verdict.Store(1)
	stepUntil(func() bool { return e.status(r.Name()).Applied == 0 }, 10*time.Minute, "an error counts as idle")
	failed := e.eventsOf(control.EventIdleCheckFailed)
	require.NotEmpty(t, failed)
	assert.Contains(t, failed[0].Message, "job queue unreachable")
	assert.GreaterOrEqual(t, asked.Load(), int32(3))
}
