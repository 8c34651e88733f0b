package activator

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/internal/hop"
)

// fakeQueueProxy answers the activator's probe as a queue-proxy does,
// ready or not as told, and serves everything else.
type fakeQueueProxy struct {
	*httptest.Server
	ready  atomic.Bool
	probes atomic.Int64
	served atomic.Int64
}

func newFakeQueueProxy(t *testing.T) *fakeQueueProxy {
	q := &fakeQueueProxy{}
	q.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == hop.HealthPath {
			defer q.probes.Add(1)
			assert.Equal(t, hop.ProbeValue, r.Header.Get(hop.ProbeHeader))
			assert.Equal(t, "s3cret", r.Header.Get(hop.ActivatorHeader))
			if !q.ready.Load() {
				http.Error(w, hop.HealthNotReady, http.StatusServiceUnavailable)
				return
			}
			_, _ = io.WriteString(w, hop.HealthReady+"\n")
			return
		}
		q.served.Add(1)
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(q.Close)
	return q
}

// The activator probes an instance the backend does not report ready
// every ProbePeriod, sends it requests once it answers, takes it out
// when it stops answering and sends again once it is back.
func TestActivatorProbesInstancesNotYetReady(t *testing.T) {
	e := newEnv(t, 0, nil)
	q := newFakeQueueProxy(t)
	inst := backend.Instance{ID: "a", Revision: rev, Address: q.Listener.Addr().String()}

	first := e.get(t)
	e.waitHeld(t, 1)
	require.NoError(t, e.h.UpdateInstances(rev, []backend.Instance{inst}))
	probed := func(n int64) {
		require.Eventually(t, func() bool { return q.probes.Load() >= n }, 10*time.Second, time.Millisecond)
	}
	probed(1) // at once, and it fails
	assert.Equal(t, 0, e.load(t).Serving)
	assert.Equal(t, 1, e.load(t).Held)

	q.ready.Store(true)
	e.clk.Step(DefaultProbePeriod)
	assert.Equal(t, http.StatusOK, wait(t, first).code, "served before the backend says ready")
	assert.Equal(t, 1, e.load(t).Serving)

	// It stops answering: taken out, probed on.
	q.ready.Store(false)
	n := q.probes.Load()
	e.clk.Step(DefaultProbePeriod)
	probed(n + 1)
	require.Eventually(t, func() bool { return e.load(t).Serving == 0 }, 10*time.Second, time.Millisecond)
	second := e.get(t)
	e.waitHeld(t, 1)
	q.ready.Store(true)
	e.clk.Step(DefaultProbePeriod)
	assert.Equal(t, http.StatusOK, wait(t, second).code)

	// Once the backend says ready its readiness governs: no more probes.
	inst.Ready = true
	require.NoError(t, e.h.UpdateInstances(rev, []backend.Instance{inst}))
	n = q.probes.Load()
	for range 5 {
		e.clk.Step(DefaultProbePeriod)
	}
	assert.Equal(t, n, q.probes.Load())
	assert.Equal(t, int64(2), q.served.Load())
}

// A probe that takes longer than ProbeTimeout (on the Handler's clock)
// fails, and the next one goes out on the next tick.
func TestActivatorProbeTimeout(t *testing.T) {
	e := newEnv(t, 0, nil)
	arrived := make(chan struct{}, 10)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-r.Context().Done() // never answers
	}))
	t.Cleanup(slow.Close)
	inst := backend.Instance{ID: "a", Revision: rev, Address: slow.Listener.Addr().String()}
	require.NoError(t, e.h.UpdateInstances(rev, []backend.Instance{inst}))
	<-arrived
	// The ticker and the probe's timeout timer; the timeout fires first.
	require.Equal(t, 2, e.clk.Waiters())
	e.clk.Step(DefaultProbeTimeout)
	require.Eventually(t, func() bool { return e.clk.Waiters() == 1 }, 10*time.Second, time.Millisecond)
	assert.Equal(t, 0, e.load(t).Serving)
	e.clk.Step(DefaultProbePeriod - DefaultProbeTimeout + DefaultProbePeriod) // the ticker's next tick
	<-arrived
	require.Eventually(t, func() bool { return e.clk.Waiters() == 2 }, 10*time.Second, time.Millisecond)
	e.clk.Step(DefaultProbeTimeout) // lets the server close
}

func TestProbeOptionsValidated(t *testing.T) {
	_, err := New(Options{Picker: picker(rev), ProbePeriod: time.Hour})
	require.ErrorContains(t, err, "Options.ProbePeriod")
	_, err = New(Options{Picker: picker(rev), ProbeTimeout: -time.Second})
	require.ErrorContains(t, err, "Options.ProbeTimeout")
}

// An instance whose Address is the app itself (no queue-proxy) gets one
// probe: its answer is no queue-proxy's, so only the backend can tell.
func TestActivatorProbesAppOnce(t *testing.T) {
	e := newEnv(t, 0, nil)
	var hits atomic.Int64
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = io.WriteString(w, "hello")
	}))
	t.Cleanup(app.Close)
	inst := backend.Instance{ID: "a", Revision: rev, Address: app.Listener.Addr().String()}
	require.NoError(t, e.h.UpdateInstances(rev, []backend.Instance{inst}))
	require.Eventually(t, func() bool { return hits.Load() == 1 }, 10*time.Second, time.Millisecond)
	for range 5 {
		e.clk.Step(DefaultProbePeriod)
	}
	assert.Equal(t, int64(1), hits.Load())
	assert.Equal(t, 0, e.load(t).Serving)
}

// The activator answers Knative's activator probe itself; CheckInPath
// tells it from an instance answering.
func TestCheckInPath(t *testing.T) {
	e := newEnv(t, 0, nil)
	require.NoError(t, CheckInPath(t.Context(), nil, e.srv.URL+"/any"))
	q := newFakeQueueProxy(t)
	require.ErrorContains(t, CheckInPath(t.Context(), nil, q.URL), "not answered by an activator")
	assert.Zero(t, e.load(t).InFlight)
}
