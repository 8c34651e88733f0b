package activator

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/stats"
)

// tick ends a reporting period of one second on the fake clock.
func (e *env) tick() {
	e.clk.Step(reportInterval)
	e.h.report(e.clk.Now(), reportInterval)
}

func TestReportsFirstRequestPeriodsAndDrop(t *testing.T) {
	e := newEnv(t, 1, nil)
	t0 := e.clk.Now()
	res := e.get(t)
	e.waitHeld(t, 1)
	// Knative's immediate report on the first request to an idle revision.
	assert.Equal(t, stats.Stat{Instance: DefaultName, AverageConcurrency: 1, RequestCount: 1, Timestamp: t0}, e.nextReport(t))
	e.noReport(t)

	// Held for the whole period: concurrency 1, less the 1 and the
	// request already sent in the immediate report (Knative).
	e.tick()
	assert.Equal(t, stats.Stat{Instance: DefaultName, AverageConcurrency: 0, Timestamp: t0.Add(time.Second)}, e.nextReport(t))

	a := newUpstream(t, "a", false)
	require.NoError(t, e.h.UpdateInstances(rev, []backend.Instance{a.instance(true)}))
	assert.Equal(t, http.StatusOK, wait(t, res).code)
	require.Eventually(t, func() bool { return e.load(t).InFlight == 0 }, 10*time.Second, time.Millisecond)

	// A period without demand is reported, then the entry is dropped.
	e.tick()
	assert.Equal(t, stats.Stat{Instance: DefaultName, Timestamp: t0.Add(2 * time.Second)}, e.nextReport(t))
	e.tick()
	e.noReport(t)

	// So the next request is a first request again.
	assert.Equal(t, http.StatusOK, wait(t, e.get(t)).code)
	assert.Equal(t, stats.Stat{Instance: DefaultName, AverageConcurrency: 1, RequestCount: 1, Timestamp: t0.Add(3 * time.Second)}, e.nextReport(t))
}

func TestReportsDemandAtOnceWhenHoldingBegins(t *testing.T) {
	e := newEnv(t, 1, func(o *Options) { o.Name = "act-1" })
	a := newUpstream(t, "a", true)
	require.NoError(t, e.h.UpdateInstances(rev, []backend.Instance{a.instance(true)}))
	first := e.get(t)
	require.Eventually(t, func() bool { return a.inFlight.Load() == 1 }, 10*time.Second, time.Millisecond)
	assert.Equal(t, 1.0, e.nextReport(t).RequestCount) // first request

	// Half a period later the instance is still busy; then the period ends.
	e.clk.Step(500 * time.Millisecond)
	e.h.report(e.clk.Now(), 500*time.Millisecond)
	assert.Equal(t, 0.0, e.nextReport(t).AverageConcurrency) // 1, less the immediate report's 1

	// The first held request of an episode reports the demand at once …
	second := e.get(t)
	e.waitHeld(t, 1)
	s := e.nextReport(t)
	assert.Equal(t, stats.Stat{Instance: "act-1", AverageConcurrency: 2, Timestamp: e.clk.Now()}, s)
	// … the next one does not.
	third := e.get(t)
	e.waitHeld(t, 2)
	e.noReport(t)

	// One busy and two held for a whole period; two arrivals.
	e.tick()
	s = e.nextReport(t)
	assert.Equal(t, 3.0, s.AverageConcurrency)
	assert.Equal(t, 2.0, s.RequestCount)

	a.release()
	for _, r := range []<-chan result{first, second, third} {
		assert.Equal(t, http.StatusOK, wait(t, r).code)
	}
	assert.LessOrEqual(t, a.max.Load(), int64(1))
}

func TestRunReportsEverySecond(t *testing.T) {
	e := newEnv(t, 1, nil)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		e.h.Run(ctx)
		close(done)
	}()
	// Run's ticker registers on the fake clock from its own goroutine.
	require.Eventually(t, e.clk.HasWaiters, 10*time.Second, time.Millisecond)
	e.get(t)
	e.waitHeld(t, 1)
	assert.Equal(t, 1.0, e.nextReport(t).RequestCount)
	e.clk.Step(reportInterval)
	s := e.nextReport(t)
	assert.Equal(t, 0.0, s.AverageConcurrency)
	assert. // less the immediate report's 1
		Equal(t, e.clk.Now(), s.Timestamp)
	e.clk.Step(reportInterval)
	s = e.nextReport(t)
	assert.Equal(t, 1.0, s.AverageConcurrency)
	assert.Equal(t, e.clk.Now(), s.Timestamp)
	cancel()
	<-done

	// Without a Reporter, Run has nothing to do.
	h, err := New(Options{Picker: picker(rev)})
	require.NoError(t, err)
	h.Run(t.Context())
}

// Two requests held half a second each are a concurrency of 1.0 over the
// second: the held time is integrated before the queue entry goes when
// they are dispatched.
func TestReportsHeldTimeOfDispatchedRequests(t *testing.T) {
	e := newEnv(t, 2, nil)
	first := e.get(t)
	e.waitHeld(t, 1)
	e.nextReport(t) // the immediate report
	e.tick()
	require.Equal(t, 0.0, e.nextReport(t).AverageConcurrency)

	// The first request held through this period as well, plus a second.
	second := e.get(t)
	e.waitHeld(t, 2)
	e.clk.Step(500 * time.Millisecond)
	a := newUpstream(t, "a", false)
	require.NoError(t, e.h.UpdateInstances(rev, []backend.Instance{a.instance(true)}))
	require.Equal(t, http.StatusOK, wait(t, first).code)
	require.Equal(t, http.StatusOK, wait(t, second).code)
	require.Eventually(t, func() bool { return e.load(t).InFlight == 0 }, 10*time.Second, time.Millisecond)
	e.clk.Step(500 * time.Millisecond)
	e.h.report(e.clk.Now(), reportInterval)
	s := e.nextReport(t)
	require.InDelta(t, 1.0, s.AverageConcurrency, 1e-9)
	require.Equal(t, 1.0, s.RequestCount)
}
